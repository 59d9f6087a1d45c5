"""What a finished run reports: the typed summary (released) and the timings (the operator's).

Generation totals (requests, tokens, cost) count every invocation of the run: a resumed run adds
what it spends to what its earlier invocations spent, kept in state/spend.json (never released),
and `generation.max_cost` is charged the same running total. summary.json (released) counts every
answer, whether the request cache gave it or not; what was paid, the request-cache statistics and
the cache's path vary with other runs (which this run's ledger does not book) and with the
machine: they go to timings.json, never to summary.json.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from augpe.atomic import read_json, write_json
from augpe.llm.base import LLM, Usage
from augpe.llm.cost import add_spend, carry_spend, cost_report, negated
from augpe.privacy.ledger import Ledger
from augpe.timing import Timer

log = logging.getLogger("augpe")

__all__ = [
    "RunResult",
    "RunSummary",
    "load_spend",
    "resume_spend",
    "save_spend",
    "split_cost_report",
    "timings_of",
    "total_spend",
]

"""Under the run's state/: the generation totals of its invocations so far (read on --resume)."""
_OPERATOR_PREFIX = "cache_"  # cost-report fields of the request cache: hits, misses, its path


def split_cost_report(report: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the released part, the request cache's part) of a cost report, mixture members included:
    `cache_hits`, `cache_misses` and `cache_path` are the operator's (timings.json)."""
    public: dict[str, Any] = {}
    cache: dict[str, Any] = {}
    for key, value in report.items():
        if key.startswith(_OPERATOR_PREFIX):
            cache[key] = value
        elif key == "members" and isinstance(value, Mapping):
            public[key], members = {}, {}
            for name, part in value.items():
                if isinstance(part, Mapping):
                    public[key][name], members[name] = split_cost_report(part)
                    if not members[name]:
                        del members[name]
                else:
                    public[key][name] = part
            if members:
                cache[key] = members
        else:
            public[key] = value
    return public, cache


def spend_of(llm: LLM) -> dict[str, Any]:
    """What this invocation generated (requests and tokens of every answer, from the request
    cache or not, so they do not depend on other runs) and paid (the cost report)."""
    u: Usage = getattr(llm, "served", None) or llm.usage
    tokens = {
        "requests": u.requests,
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
    }
    return {"generation": tokens, "cost": split_cost_report(cost_report(llm))[0]}


def total_spend(earlier: Mapping[str, Any], llm: LLM) -> dict[str, Any]:
    """This invocation's spend plus the earlier invocations' (`earlier`, from `load_spend`)."""
    now = spend_of(llm)
    return {k: add_spend(earlier.get(k) or {}, now[k]) for k in ("generation", "cost")}


def load_spend(path: Path) -> dict[str, Any]:
    """The totals the run's earlier invocations saved in `path` ({} if none)."""
    if not path.is_file():
        return {}
    try:
        raw = read_json(path)
    except (OSError, ValueError) as err:
        log.warning("%s unreadable (%s): earlier generation spend not counted", path, err)
        return {}
    return dict(raw) if isinstance(raw, dict) else {}


def resume_spend(path: Path, resume: bool, llm: LLM) -> dict[str, Any]:
    """The earlier invocations' totals of a resumed run ({} for a fresh one), already charged to
    `llm`'s budget so that `generation.max_cost` holds for the run, not per invocation. Less what
    `llm` had generated before this invocation (a caller's LLM may serve several runs), so that
    `total_spend` counts this run's invocations only."""
    earlier = load_spend(path) if resume else {}
    cost = (earlier.get("cost") or {}).get("cost", 0.0)
    carry_spend(llm, float(cost) if isinstance(cost, (int, float)) else 0.0)
    before = spend_of(llm)
    return {k: add_spend(earlier.get(k) or {}, negated(before[k])) for k in before}


def save_spend(path: Path, earlier: Mapping[str, Any], llm: LLM) -> None:
    """Write the run's totals so far (earlier invocations plus this one) to `path`: done on the
    way out of every invocation, finished, stopped by max_cost or failed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, total_spend(earlier, llm))
    except OSError as err:  # never hide the error the invocation may be failing with
        log.warning("generation spend not saved to %s (%s)", path, err)


@dataclass
class RunSummary:
    """summary.json: sizes, privacy and tokens. Everything in it is synthetic or noisy (DP-safe);
    nothing data-dependent that is not DP (no record count, no timings), and nothing of the
    machine or of other runs (no request-cache statistics, no paths)."""

    corpus: str
    samples: int
    samples_per_class: dict[str, int]
    target_samples_per_class: dict[str, int]
    noisy_class_counts: dict[str, float] | None
    epsilon: float
    delta: float | None
    delta_rule: str
    neighbouring: str
    sigma_votes: list[float]
    sigma_class_counts: float | None
    iterations: int
    keywords: dict[str, list[str]] | None
    generation: dict[str, Any]
    overlap_private: bool
    length_targets: dict[str, float | None] | None = None  # mean RANDOM API target, DP lengths
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        ledger: Ledger,
        rows: list[dict[str, Any]],
        class_names: list[str],
        sizes: list[int],
        noisy_counts: list[float] | None,
        keywords: list[list[str]] | None,
        generation: dict[str, Any],
        llm: LLM,
        overlap: bool,
        mean_words: Callable[[int], float | None] | None = None,
        spend: Mapping[str, Any] | None = None,
    ) -> RunSummary:
        """`spend`: the run's totals over all of its invocations (`total_spend`); only its
        generation totals are released (what was paid depends on the request cache)."""
        sigma_of = {e.kind.value: e.sigma for e in ledger.events if e.kind != "vote_histogram"}
        spend = spend or total_spend({}, llm)
        return cls(
            corpus="synthetic.jsonl",
            samples=len(rows),
            samples_per_class={c: sum(1 for r in rows if r["class"] == c) for c in class_names},
            target_samples_per_class=dict(zip(class_names, sizes)),
            noisy_class_counts=None
            if noisy_counts is None
            else dict(zip(class_names, [round(float(x), 2) for x in noisy_counts])),
            epsilon=ledger.epsilon(),
            delta=ledger.delta,
            delta_rule=ledger.delta_rule,
            neighbouring=ledger.neighbouring,
            sigma_votes=[e.sigma for e in ledger.events if e.kind == "vote_histogram"],
            sigma_class_counts=sigma_of.get("class_counts"),
            iterations=sum(1 for e in ledger.events if e.kind == "vote_histogram"),
            keywords=None if keywords is None else dict(zip(class_names, keywords)),
            generation={**generation, **spend["generation"]},
            overlap_private=overlap,
            length_targets=None
            if mean_words is None
            else {c: _round(mean_words(i)) for i, c in enumerate(class_names)},
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(d.pop("extra"))
        return d

    @classmethod
    def load(cls, path: Path) -> RunSummary:
        raw = dict(read_json(path))
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        return cls(**{k: raw.pop(k) for k in known if k in raw}, extra=raw)  # type: ignore[arg-type]


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def timings_of(
    timer: Timer, llm: LLM, overlap: bool, cost: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """timings.json: wall time per stage and generation throughput of this invocation, and the
    request cache's hits, misses and path. It grows with N and with the private texts' lengths,
    and the cache's part with other runs, so it stays with the operator and is never released."""
    u = llm.usage
    out: dict[str, Any] = {
        **timer.to_dict(),
        "overlap_private": overlap,
        "generation": {
            "requests": u.requests,
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "seconds": round(u.seconds, 3),
            "tokens_per_second": round(u.tokens_per_second, 2),
        },
    }
    if cost is not None:  # what the run paid, over all of its invocations
        out["cost"] = dict(cost)
    cache = split_cost_report(cost_report(llm))[1]
    if cache:
        out["request_cache"] = cache
    return out


@dataclass
class RunResult:
    run_dir: Path
    corpus_path: Path
    samples: list[dict[str, Any]]
    ledger: Ledger
    summary: dict[str, Any]
    timings: dict[str, Any]  # for the operator: data-dependent, never released
