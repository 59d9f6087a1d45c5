"""How the openai backend reads a failed call: retry it, fail only its sample, or stop the run.

Waiting cures rate limits (429), overloaded servers (5xx), timeouts, dropped connections and
malformed answers; it never cures a bad key (401), a refused model (403) or a wrong model or
endpoint (404), which stop the run with a message naming the setting to fix; any other client
error (400 / 413 / 422, e.g. one prompt over the context length) fails that sample only. The
messages name where the key came from, never the key, and error text is scrubbed of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from augpe.llm.retry import is_retryable_status, parse_retry_after

__all__ = ["Fatal", "Malformed", "Verdict", "classify"]

Verdict = tuple[Literal["retry", "sample", "fatal"], float | None, str]
"""('retry' | 'sample' | 'fatal', the server's Retry-After in seconds, the message)."""


class Fatal(Exception):
    """A failure no retry and no other sample can get past (bad key, unknown model)."""


class Malformed(Exception):
    """A 200 answer without the fields a completion has."""


def classify(
    err: BaseException,
    sdk: Any,
    *,
    where: str,
    model: str,
    api: str,
    key_source: str,
    scrub: Callable[[str], str],
) -> Verdict:
    """The verdict on one failed call; `sdk` is the `openai` module (its exception classes)."""
    msg = scrub(f"{type(err).__name__}: {err}")
    if isinstance(err, sdk.APIStatusError):
        status = err.status_code
        if status == 401:
            return (
                "fatal",
                None,
                (
                    f"generation: {where} rejected the API key from {key_source} "
                    "(401 Unauthorized): check the key or the variable/file it is read from"
                ),
            )
        if status == 403:
            return (
                "fatal",
                None,
                (
                    f"generation: {where} refused model '{model}' with the key from "
                    f"{key_source} (403 Forbidden): no access to this model or project"
                ),
            )
        if status == 404:
            return (
                "fatal",
                None,
                (
                    f"generation.model: '{model}' was not found at {where} (404), or the "
                    f"server has no '{api}' endpoint: check generation.model, "
                    "generation.base_url (it usually ends in /v1) and generation.api"
                ),
            )
        if is_retryable_status(status):
            headers = getattr(getattr(err, "response", None), "headers", None)
            return "retry", parse_retry_after(headers), f"HTTP {status}"
        return "sample", None, msg  # 400 / 413 / 422: this request only
    if isinstance(err, (sdk.APITimeoutError,)):
        return "retry", None, "timeout"
    if isinstance(err, sdk.APIConnectionError):
        return "retry", None, "connection error"
    if isinstance(err, (Malformed, ValueError, sdk.APIResponseValidationError)):
        return "retry", None, "malformed answer"  # ValueError covers JSONDecodeError
    return "sample", None, msg
