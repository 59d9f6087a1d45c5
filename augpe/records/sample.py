"""Synthetic samples and their lineage. Nothing here is private: a population is pure synthetic text."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Column names of the synthetic corpus (JSONL), in one place.
ID, TEXT, CLASS, LABELS, ITERATION, PARENT, MODEL, OP, VOTES, WEIGHT = (
    "id",
    "text",
    "class",
    "labels",
    "iteration",
    "parent_id",
    "model",
    "op",
    "noisy_votes",
    "weight",
)


@dataclass(frozen=True)
class Sample:
    id: str
    text: str
    class_id: int
    iteration: int
    parent_id: str | None
    model: str
    op: str  # "random" | "rephrase" | "fill_blanks" | "public" (a data.public_seed text)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sample:
        return cls(**d)


def class_array(samples: list[Sample]) -> np.ndarray:
    return np.fromiter((s.class_id for s in samples), dtype=np.int64, count=len(samples))


def corpus_record(
    s: Sample,
    class_names: list[str],
    class_labels: list[dict[str, str]],
    votes: float | None,
    weight: float | None = None,
) -> dict[str, Any]:
    """One line of the released corpus: text, labels, lineage, the (noisy) votes it got, and
    (output `soft`) its training weight."""
    row = {
        ID: s.id,
        TEXT: s.text,
        CLASS: class_names[s.class_id],
        LABELS: class_labels[s.class_id],
        ITERATION: s.iteration,
        PARENT: s.parent_id,
        MODEL: s.model,
        OP: s.op,
        VOTES: None if votes is None else round(float(votes), 4),
    }
    if weight is not None:
        row[WEIGHT] = round(float(weight), 4)
    return row
