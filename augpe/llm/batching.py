"""Batched local backends (vllm, transformers) share one failure rule: a batch that raises is split
in halves until the request that breaks it is alone, so only that sample fails (a prompt over the
context length, or a GPU out of memory that a smaller batch avoids) and the rest are answered."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from augpe.llm.base import Generation

__all__ = ["isolate_failures"]

log = logging.getLogger("augpe")

T = TypeVar("T")


def isolate_failures(
    run: Callable[[Sequence[T]], list[Generation]],
    items: Sequence[T],
    name: str,
    what: str = "failed",
    on_error: Callable[[], None] | None = None,
) -> list[Generation]:
    """`run(items)`, or, when it raises, the answers of its halves (recursively): a request that
    fails alone becomes a failed Generation of model `name`; `on_error` runs after every failure
    (e.g. to free GPU memory before the halves are tried); `what` words the debug log."""
    try:
        return run(items)
    except Exception as err:  # noqa: BLE001 - isolate the failing request, fail only it
        if on_error is not None:
            on_error()
        if len(items) == 1:
            return [Generation(text=None, model=name, error=f"{type(err).__name__}: {err}")]
        mid = len(items) // 2
        log.debug("%s: batch of %d %s (%s); splitting", name, len(items), what, err)
        return isolate_failures(run, items[:mid], name, what, on_error) + isolate_failures(
            run, items[mid:], name, what, on_error
        )
