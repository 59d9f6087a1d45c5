"""Retrying hosted requests: which failures are worth a retry, and how long to wait.

A long hosted run meets rate limits (429), overloaded servers (5xx), timeouts and dropped
connections; all of them pass if we wait. Exponential backoff with jitter keeps many concurrent
requests from retrying in lock-step, and a server's Retry-After always wins over our own guess.
Client errors (400/401/403/404/422) never pass by waiting, so they are never retried.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["RETRYABLE_STATUS", "RetryPolicy", "is_retryable_status", "parse_retry_after"]

# 408 request timeout, 409 conflict (OpenAI uses it for transient lock errors), 425 too early,
# 429 rate limited; every 5xx is the server's problem and may pass.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, from `retry-after-ms`, or `retry-after` (seconds or date)."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` more attempts after the first; the n-th waits about base * 2**n, at most `cap`.

    "Equal jitter": half the delay is fixed, half is random, so waits grow reliably yet
    concurrent retries spread out. A Retry-After header replaces the computed delay (bounded by
    `retry_after_cap`, so a broken header cannot stall a run for hours).
    """

    retries: int = 6
    base: float = 1.0
    cap: float = 60.0
    retry_after_cap: float = 300.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Wait before retry number `attempt` (0-based) of one request."""
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap) + rng.uniform(
                0.0, min(self.base, 1.0) * 0.1
            )
        d = min(self.cap, self.base * (2.0**attempt))
        return d / 2.0 + rng.uniform(0.0, d / 2.0)
