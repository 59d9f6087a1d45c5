"""What a finished run reports: the typed summary (released) and the timings (the operator's)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from augpe.atomic import read_json
from augpe.llm.base import LLM
from augpe.llm.cost import cost_report
from augpe.privacy.ledger import Ledger
from augpe.timing import Timer

__all__ = ["RunResult", "RunSummary", "timings_of"]


@dataclass
class RunSummary:
    """summary.json: sizes, privacy and tokens. Everything in it is synthetic or noisy (DP-safe);
    nothing data-dependent that is not DP (no record count, no timings)."""

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
    sigma_record_count: float | None
    iterations: int
    keywords: dict[str, list[str]] | None
    generation: dict[str, Any]
    cost: dict[str, Any]
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
    ) -> RunSummary:
        sigma_of = {e.kind: e.sigma for e in ledger.events if e.kind != "vote_histogram"}
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
            sigma_record_count=sigma_of.get("record_count"),
            iterations=sum(1 for e in ledger.events if e.kind == "vote_histogram"),
            keywords=None if keywords is None else dict(zip(class_names, keywords)),
            generation=generation,
            cost=cost_report(llm),
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


def timings_of(timer: Timer, llm: LLM, overlap: bool) -> dict[str, Any]:
    """timings.json: wall time per stage and generation throughput. It grows with N and with the
    private texts' lengths, so it stays in the run folder for the operator and is never released."""
    u = llm.usage
    return {
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


@dataclass
class RunResult:
    run_dir: Path
    corpus_path: Path
    samples: list[dict[str, Any]]
    ledger: Ledger
    summary: dict[str, Any]
    timings: dict[str, Any]  # for the operator: data-dependent, never released
