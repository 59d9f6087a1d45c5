"""The one interface every LLM backend implements.

The PE loop hands a backend a whole iteration's worth of requests at once, so each backend can
batch / run them concurrently as it sees fit; it never learns which backend is behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from tqdm import tqdm

Message = dict[str, str]


@dataclass(frozen=True)
class GenerationRequest:
    """One chat completion. `seed` makes the sample reproducible on backends that honour it."""

    messages: list[Message]
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Generation:
    """What came back. `text` is None when the request failed (the error says why)."""

    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    model: str = ""
    error: str | None = None


@dataclass
class Usage:
    """Running token counts of a backend (tokens/s is derived from these and wall time)."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failures: int = 0
    seconds: float = 0.0
    by_model: dict[str, int] = field(default_factory=dict)

    def add(self, g: Generation) -> None:
        self.requests += 1
        self.prompt_tokens += g.prompt_tokens
        self.completion_tokens += g.completion_tokens
        self.failures += g.text is None
        if g.model:
            self.by_model[g.model] = self.by_model.get(g.model, 0) + g.completion_tokens

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


OnResult = Callable[[int, "Generation"], None]
"""Called as each answer arrives: (index of its request, the answer). Lets a cache store it at once."""


def progress_bar(total: int, desc: str, show: bool) -> tqdm:
    """The one progress bar style of every backend: requests done, tokens in the postfix."""
    return tqdm(total=total, desc=desc or "generate", unit="req", disable=not show, leave=False)


@runtime_checkable
class LLM(Protocol):
    """A text generator. Implementations: embedded (xllamacpp), openai, vllm, transformers."""

    name: str
    usage: Usage

    def generate(self, requests: Sequence[GenerationRequest], desc: str = "") -> list[Generation]:
        """Answer every request (same order). Never raises for one bad sample: returns text=None."""
        ...

    def close(self) -> None: ...
