"""The released corpus as a table: its columns, where each format puts it in OUT, and its reader.

Both the exporter (`augpe.release.export`) and the dataset card (`augpe.release.card`) read the
corpus through `read_released_corpus`; the row format itself belongs to the evaluation's reader.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augpe.errors import AugpeError
from augpe.runner.layout import CORPUS, RunFolder

__all__ = [
    "DATA_FILES",
    "FORMATS",
    "TEXT_COLUMN",
    "WEIGHT_COLUMN",
    "ExportTable",
    "read_released_corpus",
]

DATA_FILES = {
    "jsonl": CORPUS,
    "csv": "data/train.csv",
    "parquet": "data/train.parquet",
    "hf": "data-*.arrow",
}
"""Where each format's table lies in OUT (a glob for hf: save_to_disk names its shards)."""
FORMATS = tuple(DATA_FILES)
"""`--format` values; jsonl is the default and writes nothing beyond `release`."""
TEXT_COLUMN = "text"
WEIGHT_COLUMN = "weight"  # output `soft`: each row's training weight (its noisy vote count)


@dataclass(frozen=True)
class ExportTable:
    """The released corpus as columns: `text`, then one column per label, in config order."""

    texts: list[str]
    labels: dict[str, list[str]]
    weights: list[float] | None = None  # a `soft` corpus: the `weight` column, last

    def __post_init__(self) -> None:
        for name in (TEXT_COLUMN, WEIGHT_COLUMN):
            if name in self.labels:
                raise AugpeError(
                    f"a label column is named '{name}', the name of a column of the release; "
                    "rename the label column (data.label_columns) to export this corpus"
                )

    @property
    def columns(self) -> dict[str, list[Any]]:
        weight = {} if self.weights is None else {WEIGHT_COLUMN: self.weights}
        return {TEXT_COLUMN: self.texts, **self.labels, **weight}

    def __len__(self) -> int:
        return len(self.texts)


def read_released_corpus(folder: str | os.PathLike[str]) -> ExportTable:
    """The table of a run (or release) folder: synthetic.jsonl through the evaluation's reader
    (the one owner of that file's layout), labels ordered as data.label_columns in config.yaml."""
    from augpe.evaluate.corpus import read_synthetic_jsonl

    run = RunFolder.open(Path(folder))
    corpus, cfg = read_synthetic_jsonl(run.layout.corpus), run.config()
    order = [str(c) for c in ((cfg.get("data") or {}).get("label_columns") or [])]
    columns = [c for c in order if c in corpus.labels] + [
        c for c in corpus.labels if c not in order
    ]
    return ExportTable(
        list(corpus.texts), {c: list(corpus.labels[c]) for c in columns}, corpus.weights
    )
