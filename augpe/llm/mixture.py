"""Several models in one run: each request goes to one backend of a weighted mixture.

The backend is a deterministic function of the request's seed, so a rerun or a resumed run sends
every request to the same model as before (and finds it in the cache), and the choice does not
depend on batch order. A request that names its `member` (the PE APIs do so when members have
their own prompt sets, or a variation goes to its parent's model) goes to that member. Each
backend answers its share of a batch at the same time as the others; `Generation.model` says
which model wrote each sample, and the corpus keeps it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from augpe.llm.base import LLM, BaseLLM, Generation, GenerationRequest, OnResult, Usage
from augpe.llm.cost import Budget, CostMeter

__all__ = ["MixtureLLM", "pick_by_weight", "route_fraction"]


def route_fraction(seed: int) -> float:
    """A uniform number in [0, 1) from a seed: a hash, so neighbouring seeds land far apart."""
    digest = hashlib.blake2b(
        int(seed).to_bytes(16, "little", signed=True), digest_size=8, person=b"augpe-mixture"
    ).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def pick_by_weight(
    fraction: float, weights: Sequence[float], among: Sequence[int] | None = None
) -> int:
    """The index, of `among` (default: all), whose share of their total weight holds `fraction`
    (a uniform number in [0, 1)), in order."""
    among = range(len(weights)) if among is None else among
    u = fraction * sum(weights[k] for k in among)
    for k in among:
        u -= weights[k]
        if u < 0:
            return k
    return among[-1]


class MixtureLLM(BaseLLM):
    """Routes each request to one member, with probability proportional to its weight."""

    def __init__(self, members: Sequence[tuple[LLM, float]]) -> None:
        if not members:
            raise ValueError("a mixture needs at least one backend")
        if any(not w > 0 for _, w in members):
            raise ValueError("mixture weights must be > 0")
        self.members = [m for m, _ in members]
        self.weights = [float(w) for _, w in members]
        self.name = "mixture[" + ",".join(f"{m.name}={w:g}" for m, w in members) + "]"
        self.usage = Usage()

    def route(self, seed: int) -> int:
        """Index of the member that answers a request with this seed."""
        return pick_by_weight(route_fraction(seed), self.weights)

    def _groups(self, requests: Sequence[GenerationRequest]) -> dict[int, list[int]]:
        """Member index -> the indices of the requests it answers."""
        groups: dict[int, list[int]] = {}
        for i, r in enumerate(requests):
            k = self.route(r.seed) if r.member is None else r.member
            if not 0 <= k < len(self.members):
                raise ValueError(
                    f"request {i} names mixture member {k}; there are {len(self.members)}"
                )
            groups.setdefault(k, []).append(i)
        return groups

    def worst_case(self, requests: Sequence[GenerationRequest]) -> float:
        """Each member's worst case for its share (a cached member knows its hits are free)."""
        return sum(
            (
                self.members[k].worst_case([requests[i] for i in idx])
                for k, idx in self._groups(requests).items()
            ),
            0.0,
        )

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        desc: str = "",
        on_result: OnResult | None = None,
    ) -> list[Generation]:
        """Each member answers its share at the same time; `on_result` sees the answers in
        request order once all members are done."""
        if not requests:
            return []
        start = time.perf_counter()
        groups = self._groups(requests)
        # Check the whole batch against the budget first, so nothing is sent when only part fits
        # (members normally share the run's one Budget; each is checked with its own members' share).
        worst_by_budget: dict[int, tuple[Budget, float]] = {}
        for k, idx in groups.items():
            member = self.members[k]
            if isinstance(member.meter, CostMeter):
                b = member.meter.budget
                w = member.worst_case([requests[i] for i in idx])
                worst_by_budget[id(b)] = (b, worst_by_budget.get(id(b), (b, 0.0))[1] + w)
        for b, w in worst_by_budget.values():
            b.reserve(
                w, f"the batch '{desc or 'generate'}' ({len(requests)} requests, all backends)"
            )
            b.settle(w, 0.0)  # released at once: each member reserves its own share as it sends
        out: list[Generation | None] = [None] * len(requests)

        def run(k: int) -> None:
            idx = groups[k]
            gens = self.members[k].generate([requests[i] for i in idx], desc)
            for i, g in zip(idx, gens):
                out[i] = g

        try:
            if len(groups) == 1:
                run(next(iter(groups)))
            else:
                with ThreadPoolExecutor(
                    max_workers=len(groups), thread_name_prefix="augpe-mix"
                ) as pool:
                    for f in [pool.submit(run, k) for k in groups]:
                        f.result()  # re-raises a member's BudgetExceeded / BackendError
        finally:
            self.usage.seconds += time.perf_counter() - start
        gens = [g for g in out if g is not None]
        for g in gens:
            self.usage.add(g)
        if on_result is not None:
            for i, maybe in enumerate(out):
                if maybe is not None:
                    on_result(i, maybe)
        return gens

    def cost_report(self) -> dict[str, Any]:
        parts = [m.cost_report() for m in self.members]
        by_batch: dict[str, float] = {}
        for p in parts:
            for k, v in p.get("cost_by_batch", {}).items():
                by_batch[k] = round(by_batch.get(k, 0.0) + v, 6)
        report: dict[str, Any] = {
            "cost": round(sum(p["cost"] for p in parts), 6),
            "prompt_tokens": sum(p["prompt_tokens"] for p in parts),
            "completion_tokens": sum(p["completion_tokens"] for p in parts),
            "cost_by_batch": by_batch,
            "members": {
                m.name: {"weight": w, **p} for m, w, p in zip(self.members, self.weights, parts)
            },
        }
        for key in ("cache_hits", "cache_misses"):
            if any(key in p for p in parts):
                report[key] = sum(p.get(key, 0) for p in parts)
        return report

    def close(self) -> None:
        for m in self.members:
            m.close()
