"""Hosted APIs and OpenAI-compatible servers through the official `openai` SDK (async).

One backend covers OpenAI, Azure OpenAI (its /openai/v1/ endpoint), a vLLM or llama.cpp /
xllamacpp server and other gateways: only `base_url` differs. A long hosted run meets rate
limits, overloaded servers and dropped connections, so:

- concurrency is bounded (`generation.concurrency` requests in flight);
- 429 / 5xx / timeouts / connection errors / malformed answers are retried with exponential
  backoff and jitter, honouring Retry-After (a 429 also pauses every other request of the run);
- 401 / 403 / 404 are never retried: they stop the run with a message that names the problem,
  and a 1-token preflight request at construction finds them before anything is spent;
- a 400 / 422 (e.g. one prompt over the context length) fails that sample only;
- spending is booked from the server's reported usage and guarded by `generation.max_cost`.

The API key comes only from an environment variable or a key file. It is handed to the SDK and
kept nowhere else: it is never printed, logged, put in an error message or written to the run.

The SDK is async; we run it on a private event loop in a background thread, so `generate` is a
plain blocking call that works the same from scripts, the CLI and notebooks (whose own loop is
already running), and the HTTP connection pool lives as long as the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from tqdm import tqdm

from augpe.config import OpenAIGeneration
from augpe.errors import BackendError, ConfigError, missing_dependency
from augpe.llm.backends.openai_errors import Fatal, Malformed, classify
from augpe.llm.base import Generation, GenerationRequest, Message, OnResult, Usage, progress_bar
from augpe.llm.chat import messages_to_prompt
from augpe.llm.cost import Budget, CostMeter, Metered, Prices
from augpe.llm.keys import read_api_key
from augpe.llm.retry import RetryPolicy
from augpe.llm.tokens import prompt_counter

__all__ = ["OpenAILLM"]

log = logging.getLogger("augpe")

T = TypeVar("T")

_PREFLIGHT_MESSAGES: list[Message] = [{"role": "user", "content": "Reply with the word OK."}]


class _LoopThread:
    """A private asyncio loop in a daemon thread; `run` blocks the caller until a coroutine ends."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="augpe-openai", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()  # e.g. Ctrl-C in the caller: stop the in-flight requests too
            raise

    def close(self, final: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        if not self.loop.is_running():
            return
        if final is not None:
            # Closing must not fail a finished run, whatever the connection pool says.
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(final(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class OpenAILLM(Metered):
    """Chat or completions requests to an OpenAI-compatible server, concurrent and retried."""

    supports_on_result = True

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        key_source: str = "the API key",
        base_url: str | None = None,
        api: str = "chat",
        concurrency: int = 16,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        prices: Prices | None = None,
        budget: Budget | None = None,
        send_seed: bool = True,
        max_tokens_param: str = "max_tokens",
        preflight: bool = True,
        show_progress: bool = True,
        rng_seed: int | None = None,
    ) -> None:
        try:
            import openai
        except ImportError as err:
            raise missing_dependency("openai", extra="openai") from err
        if api not in ("chat", "completions"):
            raise ConfigError(f"generation.api: must be 'chat' or 'completions', got {api!r}")
        self._openai: Any = openai
        self.model = model
        self.api = api
        self.base_url = base_url
        self.where = base_url or "api.openai.com"
        self.name = f"openai:{model}"
        self.cache_id = f"openai:{model}@{self.where}/{api}"
        self.concurrency = concurrency
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.send_seed = send_seed
        self.max_tokens_param = max_tokens_param
        self.key_source = key_source
        self.show_progress = show_progress
        self.usage = Usage()
        counter = prompt_counter(model, "openai")  # tiktoken when its file is here, else estimate
        self.meter = CostMeter(
            prices, budget, count_prompt=counter, count_method=counter.describe()
        )
        self.retries: Counter[str] = Counter()
        self._rng = random.Random(rng_seed)
        # The key goes to the SDK and nowhere else; scrubbing error text is belt and braces.
        self._scrub_values = [api_key] if api_key and len(api_key) >= 6 else []
        self._loop = _LoopThread()
        self._client: Any = openai.AsyncOpenAI(
            api_key=api_key or "EMPTY", base_url=base_url, timeout=timeout, max_retries=0
        )
        self._pause_until = 0.0  # loop time before which no request is sent (after a 429)
        self._sem: asyncio.Semaphore | None = None
        if preflight:
            try:
                self._preflight()
            except BaseException:
                self.close()
                raise

    @classmethod
    def from_config(
        cls, cfg: OpenAIGeneration, show_progress: bool = True, budget: Budget | None = None
    ) -> OpenAILLM:
        if not cfg.model:
            raise ConfigError(
                "generation.model: name the model for backend 'openai' (e.g. gpt-4o-mini, or the "
                "model a local server serves)"
            )
        key, source = read_api_key(cfg)
        if key is None and cfg.base_url is None:
            raise BackendError(
                f"generation: no API key for {cfg.model}: set the environment variable "
                f"{cfg.api_key_env} (generation.api_key_env names another) or generation.api_key_file"
            )
        return cls(
            cfg.model,
            api_key=key,
            key_source=source if key else "no key (none set)",
            base_url=cfg.base_url,
            api=cfg.api,
            concurrency=cfg.concurrency,
            timeout=cfg.timeout,
            retry=RetryPolicy(cfg.request_retries, cfg.retry_backoff, cfg.retry_backoff_max),
            prices=Prices(cfg.price_per_1k_input, cfg.price_per_1k_output),
            budget=budget or Budget(cfg.max_cost),
            send_seed=cfg.send_seed,
            max_tokens_param=cfg.max_tokens_param,
            preflight=cfg.preflight,
            show_progress=show_progress,
        )

    def __repr__(self) -> str:
        return f"OpenAILLM(model={self.model!r}, base_url={self.where!r}, api={self.api!r})"

    # ---- one HTTP call -----------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        for secret in self._scrub_values:
            text = text.replace(secret, "***")
        return text

    def _body(self, req: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            self.max_tokens_param: req.max_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
        }
        if self.send_seed:
            body["seed"] = req.seed
        if req.stop:
            body["stop"] = list(req.stop)
        if self.api == "chat":
            body["messages"] = req.messages
        else:
            body["prompt"] = messages_to_prompt(req.messages)
        return body

    async def _call(self, req: GenerationRequest) -> Generation:
        body = self._body(req)
        if self.api == "chat":
            resp = await self._client.chat.completions.create(**body)
        else:
            if (
                self.max_tokens_param != "max_tokens"
            ):  # the completions endpoint knows only this one
                body["max_tokens"] = body.pop(self.max_tokens_param)
            resp = await self._client.completions.create(**body)
        choices = getattr(resp, "choices", None)
        if not choices:
            raise Malformed("answer has no choices")
        choice = choices[0]
        if self.api == "chat":
            message = getattr(choice, "message", None)
            if message is None:
                raise Malformed("answer has no message")
            text = message.content or ""
        else:
            text = getattr(choice, "text", None)
            if text is None:
                raise Malformed("answer has no text")
        usage = getattr(resp, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        if usage is None:  # a gateway that reports nothing: estimate, so the budget still counts
            prompt_tokens = self.meter.count_prompt(req)
            completion_tokens = max(1, len(text) // 3) if text else 0
        return Generation(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=str(getattr(choice, "finish_reason", "") or ""),
            model=self.name,
        )

    async def _one(
        self, req: GenerationRequest, desc: str, retries: int | None = None
    ) -> Generation:
        """One request with its retries. Raises Fatal; otherwise always returns a Generation."""
        assert self._sem is not None
        max_retries = self.retry.retries if retries is None else retries
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            async with self._sem:
                # Checked once a slot is ours: a request queued on the semaphore while another
                # got a 429 must still respect the pause that 429 asked for.
                while (wait := self._pause_until - loop.time()) > 0:
                    await asyncio.sleep(wait)
                try:
                    return await self._call(req)
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # noqa: BLE001 - every failure is classified below
                    kind, retry_after, why = classify(
                        err,
                        self._openai,
                        where=self.where,
                        model=self.model,
                        api=self.api,
                        key_source=self.key_source,
                        scrub=self._scrub,
                    )
                    delay = self.retry.delay(attempt, self._rng, retry_after)
                    if kind == "retry" and retry_after is not None:
                        # The server speaks for everyone: hold every request back, not just this one.
                        self._pause_until = max(self._pause_until, loop.time() + delay)
            if kind == "fatal":
                raise Fatal(why)
            if kind == "sample":
                return Generation(text=None, model=self.name, error=why)
            self.retries[why] += 1
            if attempt >= max_retries:
                return Generation(
                    text=None, model=self.name, error=f"gave up after {attempt + 1} attempts: {why}"
                )
            log.debug("%s: %s on '%s', retry %d in %.2fs", self.name, why, desc, attempt + 1, delay)
            await asyncio.sleep(delay)
            attempt += 1

    async def _all(
        self,
        requests: Sequence[GenerationRequest],
        desc: str,
        bar: tqdm,
        on_result: OnResult | None,
    ) -> list[Generation]:
        self._sem = self._sem or asyncio.Semaphore(self.concurrency)
        out: list[Generation | None] = [None] * len(requests)

        async def indexed(i: int, r: GenerationRequest) -> tuple[int, Generation]:
            return i, await self._one(r, desc)

        tasks = [asyncio.ensure_future(indexed(i, r)) for i, r in enumerate(requests)]
        try:
            for fut in asyncio.as_completed(tasks):
                i, g = await fut
                out[i] = g
                self.count(i, g, desc, on_result)
                bar.update(1)
                bar.set_postfix(
                    **self.meter.postfix(), retries=sum(self.retries.values()), refresh=False
                )
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return [g for g in out if g is not None]

    # ---- the Protocol ------------------------------------------------------------------------
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        desc: str = "",
        on_result: OnResult | None = None,
    ) -> list[Generation]:
        """Answer every request (same order). `on_result(i, g)` sees each answer as it arrives."""
        if not requests:
            return []
        with (
            self.metered(requests, desc),
            progress_bar(len(requests), desc, self.show_progress) as bar,
        ):
            try:
                return self._loop.run(self._all(requests, desc, bar, on_result))
            except Fatal as err:
                raise BackendError(str(err)) from None

    def _preflight(self) -> None:
        """A 1-token request: a bad key, model, endpoint or parameter fails here, not mid-run."""
        req = GenerationRequest(
            messages=_PREFLIGHT_MESSAGES, max_tokens=1, temperature=0.0, top_p=1.0, seed=0
        )
        worst = self.meter.reserve([req], "preflight")
        cost_before = self.meter.cost

        async def once() -> Generation:
            self._sem = self._sem or asyncio.Semaphore(self.concurrency)
            return await self._one(req, "preflight", retries=min(self.retry.retries, 2))

        try:
            g = self._loop.run(once())
        except Fatal as err:
            raise BackendError(str(err)) from None
        self.meter.record(g, "preflight")
        self.meter.settle(worst, self.meter.cost - cost_before)
        if g.text is None:
            raise BackendError(
                f"generation: a 1-token test request to '{self.model}' at {self.where} failed: "
                f"{g.error}. If it names a parameter, try generation.send_seed: false or "
                "generation.max_tokens_param: max_completion_tokens; if it cannot connect, check "
                "generation.base_url"
            )

    def cost_report(self) -> dict[str, Any]:
        return {**super().cost_report(), "retries": dict(self.retries)}

    def close(self) -> None:
        client = self._client

        async def final() -> None:
            await client.close()

        self._loop.close(final)
