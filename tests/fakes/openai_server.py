"""An OpenAI-compatible HTTP server on 127.0.0.1 that misbehaves on command, and records every body.

Standard library only (http.server), so the tests exercise the real `openai` SDK and the real
network stack of the backend. Each request gets a fault chosen by `faults(body, attempt)`, where
`attempt` counts earlier requests with the same (messages, seed): "ok", "429" (with Retry-After),
"429-ms" (retry-after-ms), "500", "503", "slow" (answers after the client's timeout), "malformed"
(200 with broken JSON), "drop" (closes the connection without a response), "400", "401", "404".
With `upstream` set, "ok" requests are forwarded to a real server: a fault-injecting proxy.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from typing_extensions import Self

__all__ = ["FakeOpenAIServer", "always_ok", "body_key", "reply_text"]

FaultPlan = Callable[[dict[str, Any], int], str]


def always_ok(body: dict[str, Any], attempt: int) -> str:
    return "ok"


def body_key(body: dict[str, Any]) -> str:
    """Identity of one logical request across its retries."""
    what = body.get("messages", body.get("prompt"))
    return hashlib.sha256(json.dumps([what, body.get("seed")], sort_keys=True).encode()).hexdigest()


WORDS = (
    "crisp",
    "fresh",
    "tasty",
    "sweet",
    "mild",
    "bold",
    "rich",
    "smooth",
    "bright",
    "warm",
    "pleasant",
    "honest",
    "simple",
    "lovely",
    "solid",
    "tender",
    "savory",
    "zesty",
    "mellow",
    "hearty",
)


def reply_text(body: dict[str, Any]) -> str:
    """A deterministic synthetic answer: same request and seed, same text; a new seed, a new text."""
    seed = int(body.get("seed") or 0)
    limit = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
    digest = hashlib.sha256(
        json.dumps(body.get("messages", body.get("prompt")), sort_keys=True).encode()
    )
    h = int.from_bytes(digest.digest()[:4], "big") ^ seed
    n = max(3, min(limit, 12))
    words = [WORDS[(h >> (i % 24) ^ i * 7 + seed) % len(WORDS)] for i in range(n)]
    return f"Sample {seed} " + " ".join(words) + "."


class FakeOpenAIServer:
    """Start with `with FakeOpenAIServer(...) as srv:`; point the client at `srv.base_url`."""

    def __init__(
        self,
        faults: FaultPlan = always_ok,
        *,
        model: str = "fake-model",
        api_key: str | None = None,
        slow_seconds: float = 2.0,
        retry_after: str = "1",
        upstream: str | None = None,
        ok_delay: float = 0.0,
    ) -> None:
        self.faults = faults
        self.model = model
        self.api_key = api_key
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.upstream = upstream.rstrip("/") if upstream else None
        self.ok_delay = ok_delay
        self.in_flight = 0
        self.max_in_flight = 0
        self.bodies: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.served: Counter[str] = Counter()
        self.times: list[tuple[float, str, str]] = []  # (arrival, key, fault)
        self._attempts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Self:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer._get(self)

            def do_POST(self) -> None:
                outer._post(self)

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    # ---- request handling --------------------------------------------------------------------
    def _send_json(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        obj: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(obj).encode()
        self._send_bytes(h, status, data, headers)

    @staticmethod
    def _send_bytes(
        h: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str] | None = None
    ) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the client gave up (timeout): nothing to answer

    @staticmethod
    def _error(message: str, type_: str, code: str | None) -> dict[str, Any]:
        return {"error": {"message": message, "type": type_, "param": None, "code": code}}

    def _authorised(self, h: BaseHTTPRequestHandler) -> bool:
        if self.api_key is None:
            return True
        if h.headers.get("Authorization") == f"Bearer {self.api_key}":
            return True
        self._send_json(
            h,
            401,
            self._error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
        )
        return False

    def _get(self, h: BaseHTTPRequestHandler) -> None:
        if not self._authorised(h):
            return
        if h.path.rstrip("/") == "/v1/models":
            self._send_json(
                h, 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]}
            )
        elif h.path.startswith("/v1/models/") and h.path.rsplit("/", 1)[1] == self.model:
            self._send_json(h, 200, {"id": self.model, "object": "model", "owned_by": "fake"})
        else:
            self._send_json(h, 404, self._error("Not found", "invalid_request_error", None))

    def _post(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self._post_counted(h)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _post_counted(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(h, 400, self._error("body is not JSON", "invalid_request_error", None))
            return
        key = body_key(body)
        with self._lock:
            attempt = self._attempts[key]
            self._attempts[key] += 1
            self.raw.append(raw)
            self.bodies.append(body)
            self.headers.append({k.lower(): v for k, v in h.headers.items()})
        if not self._authorised(h):
            with self._lock:
                self.served["401"] += 1
            return
        fault = self.faults(body, attempt)
        if fault == "ok" and body.get("model") != self.model and self.upstream is None:
            fault = "404"
        with self._lock:
            self.served[fault] += 1
            self.times.append((time.monotonic(), key, fault))
        self._answer(h, fault, body, raw)

    def _answer(
        self, h: BaseHTTPRequestHandler, fault: str, body: dict[str, Any], raw: bytes
    ) -> None:
        if fault == "429":
            self._send_json(
                h,
                429,
                self._error("Rate limit reached", "requests", "rate_limit_exceeded"),
                {"Retry-After": self.retry_after},
            )
        elif fault == "429-ms":
            self._send_json(
                h,
                429,
                self._error("Rate limit reached", "requests", "rate_limit_exceeded"),
                {"retry-after-ms": "150"},
            )
        elif fault in ("500", "503"):
            self._send_json(
                h, int(fault), self._error("The server had an error", "server_error", None)
            )
        elif fault == "400":
            self._send_json(
                h,
                400,
                self._error(
                    "This model's maximum context length is exceeded",
                    "invalid_request_error",
                    "context_length_exceeded",
                ),
            )
        elif fault == "401":
            self._send_json(
                h,
                401,
                self._error(
                    "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
                ),
            )
        elif fault == "404":
            self._send_json(
                h,
                404,
                self._error(
                    f"The model `{body.get('model')}` does not exist",
                    "invalid_request_error",
                    "model_not_found",
                ),
            )
        elif fault == "slow":
            time.sleep(self.slow_seconds)
            self._ok(h, body, raw, h.path)
        elif fault == "malformed":
            self._send_bytes(
                h, 200, b'{"id": "x", "choices": [{"index": 0, "message": {"content": "trunc'
            )
        elif fault == "drop":
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            h.close_connection = True
        else:
            self._ok(h, body, raw, h.path)

    def _ok(self, h: BaseHTTPRequestHandler, body: dict[str, Any], raw: bytes, path: str) -> None:
        if self.upstream is not None:
            self._forward(h, raw, path)
            return
        if self.ok_delay:
            time.sleep(self.ok_delay)
        text = reply_text(body)
        prompt_chars = len(json.dumps(body.get("messages", body.get("prompt"))))
        usage = {
            "prompt_tokens": prompt_chars // 4,
            "completion_tokens": len(text.split()),
            "total_tokens": prompt_chars // 4 + len(text.split()),
        }
        if path.endswith("/chat/completions"):
            choice: dict[str, Any] = {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": text},
            }
            obj = "chat.completion"
        else:
            choice = {"index": 0, "finish_reason": "stop", "text": text, "logprobs": None}
            obj = "text_completion"
        self._send_json(
            h,
            200,
            {
                "id": "fake-1",
                "object": obj,
                "created": 0,
                "model": self.model,
                "choices": [choice],
                "usage": usage,
            },
        )

    def _forward(self, h: BaseHTTPRequestHandler, raw: bytes, path: str) -> None:
        assert self.upstream is not None
        url = self.upstream + path.removeprefix("/v1")
        req = urllib.request.Request(url, data=raw, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                self._send_bytes(h, resp.status, resp.read())
        except urllib.error.HTTPError as err:
            self._send_bytes(h, err.code, err.read())
