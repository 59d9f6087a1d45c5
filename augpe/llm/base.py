"""The one interface every LLM backend implements.

The PE loop hands a backend a whole iteration's worth of requests at once, so each backend can
batch / run them concurrently as it sees fit; it never learns which backend is behind it. The
Protocol names everything any caller uses (the loop, the request cache, a mixture, Ray replicas,
the run summary), so no caller has to ask an object what it happens to have; `BaseLLM` gives the
defaults, so a backend or a test stand-in writes only `name`, `usage` and `generate`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tqdm import tqdm

Message = dict[str, str]


@dataclass(frozen=True)
class GenerationRequest:
    """One chat completion. `seed` makes the sample reproducible on backends that honour it.
    `member`: in a mixture, the member that must answer it (its prompt was rendered for that
    member); None lets the mixture route it by its seed. Not part of the request cache's key."""

    messages: list[Message]
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    stop: tuple[str, ...] = ()
    member: int | None = None


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


class Meter(Protocol):
    """What a priced backend's cost meter answers here (`augpe.llm.cost.CostMeter` is one)."""

    def worst_case(self, requests: Sequence[GenerationRequest]) -> float: ...


@runtime_checkable
class LLM(Protocol):
    """A text generator. Implementations: the backends in `augpe.llm.backends` (embedded,
    openai, vllm, transformers), `MixtureLLM`, the request cache `CachedLLM`, and on a cluster
    `RayLLM` / `RayDataVLLM`; all of them subclass `BaseLLM`."""

    name: str
    """Shown in logs and the run summary."""
    usage: Usage
    """Tokens and wall time of what this backend really generated (cache hits excluded)."""

    @property
    def cache_id(self) -> str:
        """Everything besides the request that decides an answer (kind, model, endpoint, API):
        the request cache's key space. Defaults to `name`."""
        ...

    @property
    def meter(self) -> Meter | None:
        """Tokens and money of a priced backend, and the run's Budget it books against; None for
        a backend that keeps no meter (it is free)."""
        ...

    @property
    def supports_on_result(self) -> bool:
        """Opt-in, for a backend whose `generate` calls `on_result` as each answer arrives: the
        request cache then hands it a whole batch and stores answers as they come. False: the
        cache sends it chunks and stores each chunk when it returns."""
        ...

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        desc: str = "",
        on_result: OnResult | None = None,
    ) -> list[Generation]:
        """Answer every request (same order). Never raises for one bad sample: returns text=None.

        `on_result(i, answer)`, when given, is called once per answer: as it arrives where
        `supports_on_result`, else at the latest when the batch is done.
        """
        ...

    def worst_case(self, requests: Sequence[GenerationRequest]) -> float:
        """The most that sending `requests` could cost (what the max_cost guard reserves)."""
        ...

    def cost_report(self) -> dict[str, Any]:
        """Tokens, cost (and retries, cache hits, ... where there are any) for the run summary."""
        ...

    def close(self) -> None: ...


class BaseLLM:
    """The defaults of every LLM member but `generate`: a free backend without a meter, whose
    cache key is its name, that reports answers when a batch is done and holds nothing to close.

    A subclass sets `name` and `usage` (and may assign `cache_id` or `meter`) and writes
    `generate`; priced backends subclass `augpe.llm.cost.Metered` instead.
    """

    name: str
    usage: Usage
    meter: Meter | None = None
    supports_on_result: bool = False
    _cache_id: str | None = None

    @property
    def cache_id(self) -> str:
        return self.name if self._cache_id is None else self._cache_id

    @cache_id.setter
    def cache_id(self, value: str) -> None:
        self._cache_id = value

    def worst_case(self, requests: Sequence[GenerationRequest]) -> float:
        return 0.0 if self.meter is None else float(self.meter.worst_case(requests))

    def cost_report(self) -> dict[str, Any]:
        """A backend without a meter is free: its report comes from `usage`."""
        u = self.usage
        return {
            "cost": 0.0,
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "price_per_1k_input": 0.0,
            "price_per_1k_output": 0.0,
            "cost_by_batch": {},
        }

    def close(self) -> None:
        return None
