"""What a run spends on generation, and the guard that stops it before it spends too much.

Prices are per backend (a mixture may pair a paid API with a free local model); the budget is one
for the run and shared by every backend in it. The guard is pessimistic on purpose: before a batch
is sent it charges every request its full `max_tokens` and an over-estimate of its prompt, and
refuses the batch if that worst case could cross `max_cost`. Actual cost is then booked from the
token counts the server reports; the worst case counts prompts with tiktoken where its encoding
file is on this machine (`augpe.llm.tokens`), else estimates them from characters.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from augpe.errors import AugpeError
from augpe.llm.base import LLM, BaseLLM, Generation, GenerationRequest, OnResult, Usage

__all__ = [
    "ESTIMATE_METHOD",
    "Budget",
    "BudgetExceeded",
    "CostMeter",
    "Metered",
    "Prices",
    "add_spend",
    "budgets_of",
    "carry_spend",
    "cost_report",
    "estimate_prompt_tokens",
]


class BudgetExceeded(AugpeError):
    """The next batch could push spending past `generation.max_cost`; nothing of it was sent.

    Everything generated before it is kept (and cached), so raising the limit and resuming the
    run continues where it stopped without paying twice.
    """

    exit_code = 3


@dataclass(frozen=True)
class Prices:
    """Price of one backend, in currency units per 1000 tokens (0 for local models)."""

    input_per_1k: float = 0.0
    output_per_1k: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_1k + completion_tokens * self.output_per_1k) / 1000.0

    @property
    def free(self) -> bool:
        return self.input_per_1k == 0.0 and self.output_per_1k == 0.0


class Budget:
    """The run's spending limit, shared by all of its backends (thread-safe).

    A batch `reserve`s its worst case before it is sent and `settle`s with its actual cost after,
    so backends generating at the same time (a mixture) can never overshoot together.
    """

    def __init__(self, max_cost: float | None = None) -> None:
        if max_cost is not None and not max_cost > 0:
            raise ValueError(f"max_cost must be > 0, got {max_cost}")
        self.max_cost = max_cost
        self.spent = 0.0
        self.reserved = 0.0
        self._lock = threading.Lock()

    def reserve(self, worst: float, what: str) -> None:
        with self._lock:
            if self.max_cost is not None and self.spent + self.reserved + worst > self.max_cost:
                raise BudgetExceeded(
                    f"generation.max_cost={self.max_cost:g} could be exceeded: {self.spent:.4f} spent, "
                    f"{self.reserved:.4f} in flight, and {what} could cost up to {worst:.4f} "
                    "(every request at its max_tokens). Nothing of it was sent. Raise "
                    "generation.max_cost and resume the run: finished completions are cached."
                )
            self.reserved += worst

    def settle(self, worst: float, actual: float) -> None:
        with self._lock:
            self.reserved = max(0.0, self.reserved - worst)
            self.spent += actual

    @property
    def remaining(self) -> float | None:
        return None if self.max_cost is None else self.max_cost - self.spent


ESTIMATE_METHOD = "estimate (3 characters per token)"
"""How `estimate_prompt_tokens` counts; `augpe.llm.tokens` uses tiktoken instead where it can."""


def estimate_prompt_tokens(req: GenerationRequest) -> int:
    """An upper-side estimate of a request's prompt tokens without a tokenizer.

    English runs about 4 characters per token on OpenAI tokenizers; 3 keeps the guard on the safe
    side for other languages and odd text, and each message costs a few framing tokens.
    """
    chars = sum(len(m.get("content", "")) for m in req.messages)
    return math.ceil(chars / 3) + 4 * len(req.messages) + 3


class CostMeter:
    """Tokens and money of one backend, per run and per batch label (`desc`, e.g. "variations it3")."""

    def __init__(
        self,
        prices: Prices | None = None,
        budget: Budget | None = None,
        count_prompt: Callable[[GenerationRequest], int] = estimate_prompt_tokens,
        count_method: str | None = None,
    ) -> None:
        self.prices = prices or Prices()
        self.budget = budget or Budget()
        self.count_prompt = count_prompt
        # How prompts are counted before sending (the max_cost worst case), for the cost report.
        self.count_method = count_method or (
            ESTIMATE_METHOD if count_prompt is estimate_prompt_tokens else "the backend's tokenizer"
        )
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost = 0.0
        self.by_desc: dict[str, float] = {}
        self._lock = threading.Lock()

    def worst_case(self, requests: Sequence[GenerationRequest]) -> float:
        if self.prices.free:
            return 0.0
        return sum(self.prices.cost(self.count_prompt(r), r.max_tokens) for r in requests)

    def reserve(self, requests: Sequence[GenerationRequest], desc: str) -> float:
        """Book the batch's worst case against the budget, or raise BudgetExceeded (nothing sent)."""
        worst = self.worst_case(requests)
        self.budget.reserve(worst, f"the batch '{desc or 'generate'}' ({len(requests)} requests)")
        return worst

    def record(self, g: Generation, desc: str) -> float:
        """Book one answer's actual cost (server-reported tokens); returns it."""
        c = self.prices.cost(g.prompt_tokens, g.completion_tokens)
        with self._lock:
            self.prompt_tokens += g.prompt_tokens
            self.completion_tokens += g.completion_tokens
            self.cost += c
            key = desc or "generate"
            self.by_desc[key] = self.by_desc.get(key, 0.0) + c
        return c

    def settle(self, worst: float, actual: float) -> None:
        self.budget.settle(worst, actual)

    def report(self) -> dict[str, Any]:
        return {
            "cost": round(self.cost, 6),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "price_per_1k_input": self.prices.input_per_1k,
            "price_per_1k_output": self.prices.output_per_1k,
            "cost_by_batch": {k: round(v, 6) for k, v in self.by_desc.items()},
            "prompt_tokens_before_sending": self.count_method,
        }

    def postfix(self) -> dict[str, Any]:
        """What a progress bar shows: tokens so far, and money when the backend is priced."""
        out: dict[str, Any] = {"tok": self.completion_tokens}
        if not self.prices.free:
            out["cost"] = f"{self.cost:.4f}"
        return out


class Metered(BaseLLM):
    """Bookkeeping shared by the metered backends (openai, vllm, transformers, Ray).

    `with self.metered(requests, desc):` books the batch's worst case before anything is sent
    (BudgetExceeded: nothing sent), and on the way out, even on error, adds the wall time and
    settles the true cost; `self.count(i, g, desc, on_result)` books each answer as it arrives.
    """

    usage: Usage
    meter: CostMeter

    @contextmanager
    def metered(self, requests: Sequence[GenerationRequest], desc: str) -> Iterator[None]:
        worst = self.meter.reserve(requests, desc)
        cost_before = self.meter.cost
        start = time.perf_counter()
        try:
            yield
        finally:
            self.usage.seconds += time.perf_counter() - start
            self.meter.settle(worst, self.meter.cost - cost_before)

    def count(self, i: int, g: Generation, desc: str, on_result: OnResult | None) -> None:
        self.usage.add(g)
        self.meter.record(g, desc)
        if on_result is not None:
            on_result(i, g)

    def cost_report(self) -> dict[str, Any]:
        report = self.meter.report()
        report["failures"] = self.usage.failures
        return report


def cost_report(llm: LLM) -> dict[str, Any]:
    """Tokens, cost, retries and cache hits of any backend (wrappers included), for the summary.

    Backends without a meter (the embedded model) are free: their report comes from `usage`
    (`BaseLLM.cost_report`).
    """
    return llm.cost_report()


# ---- a run's spending across its invocations (--resume) -----------------------------------------
SPEND_TOTALS = ("requests", "prompt_tokens", "completion_tokens", "failures", "cost")
"""The additive fields of a cost report or token count: summed over a run's invocations."""


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def add_spend(earlier: Mapping[str, Any], now: Mapping[str, Any]) -> dict[str, Any]:
    """`now` (a cost report, or a token count) with what earlier invocations of the same run spent
    added: the SPEND_TOTALS summed, `cost_by_batch` merged, a mixture's `members` each in turn.
    Every other field (prices, replicas, ...) is `now`'s."""
    out = dict(now)
    for key, before in earlier.items():
        value = out.get(key)
        if key in SPEND_TOTALS and _number(before):
            total = (value if _number(value) else 0) + before
            out[key] = round(total, 6) if key == "cost" else total
        elif key == "cost_by_batch" and isinstance(before, Mapping):
            merged = dict(value) if isinstance(value, Mapping) else {}
            for batch, c in before.items():
                merged[batch] = round(merged.get(batch, 0.0) + float(c), 6)
            out[key] = merged
        elif key == "members" and isinstance(before, Mapping):
            members = dict(value) if isinstance(value, Mapping) else {}
            for name, part in before.items():
                mine = members.get(name)
                members[name] = add_spend(part, mine if isinstance(mine, Mapping) else {})
            out[key] = members
    return out


def negated(report: Mapping[str, Any]) -> dict[str, Any]:
    """`report` with its SPEND_TOTALS, `cost_by_batch` and mixture `members` negated: added to a
    later report of the same backend (`add_spend`), it leaves what was spent in between."""
    out = dict(report)
    for key, value in report.items():
        if key in SPEND_TOTALS and _number(value):
            out[key] = -value
        elif key == "cost_by_batch" and isinstance(value, Mapping):
            out[key] = {b: -float(c) for b, c in value.items()}
        elif key == "members" and isinstance(value, Mapping):
            out[key] = {n: negated(p) if isinstance(p, Mapping) else p for n, p in value.items()}
    return out


def budgets_of(llm: Any) -> list[Budget]:
    """Every distinct Budget behind `llm`: its meter's, and those of the backends it wraps
    (`inner`: the request cache) or mixes (`members`)."""
    found: dict[int, Budget] = {}
    todo, seen = [llm], set()
    while todo:
        x = todo.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        budget = getattr(getattr(x, "meter", None), "budget", None)
        if isinstance(budget, Budget):
            found.setdefault(id(budget), budget)
        inner = getattr(x, "inner", None)
        if inner is not None:
            todo.append(inner)
        todo.extend(getattr(x, "members", None) or ())
    return list(found.values())


def carry_spend(llm: LLM, spent: float) -> None:
    """Count what earlier invocations of the run spent against `generation.max_cost`: a resumed
    run may spend only what is left of the one budget, not a fresh one."""
    if spent > 0:
        for budget in budgets_of(llm):
            with budget._lock:
                budget.spent += spent
