"""The corpora an evaluation compares: a run's synthetic corpus, its baselines, real text.

A corpus here is texts plus zero or more label columns (one value per text per column). It can
come from a run folder (``synthetic.jsonl`` and the populations in ``state/``), from any
synthetic.jsonl-shaped file, or from a table (CSV / JSONL / Parquet / HF) read through
`augpe.records.data.read_table`. Every bad input is an `AugpeError` naming the file and column.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augpe.errors import AugpeError, DataError
from augpe.records.data import CLASS_SEP, jsonl_records, read_table
from augpe.runner.layout import CORPUS, RunFolder

CORPUS_FILE = CORPUS


class EvalError(AugpeError):
    """An evaluation cannot be run as asked (not a run folder, nothing to compare, ...)."""


@dataclass(frozen=True)
class TextCorpus:
    """Texts and their labels: ``labels[column][i]`` is the value of text i in that column."""

    texts: list[str]
    labels: dict[str, list[str]]
    source: str
    name: str = ""
    epsilon: float | None = None  # the DP budget the corpus was made with, when known
    meta: dict[str, Any] = field(default_factory=dict)
    weights: list[float] | None = None  # per-text training weights (a `soft` corpus's `weight`)

    def __post_init__(self) -> None:
        if self.weights is not None and len(self.weights) != len(self.texts):
            raise ValueError(f"{len(self.weights)} weights for {len(self.texts)} texts")
        for col, values in self.labels.items():
            if len(values) != len(self.texts):
                raise ValueError(
                    f"label column {col!r} has {len(values)} values for {len(self.texts)} texts"
                )

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def label_columns(self) -> list[str]:
        return list(self.labels)

    def label_counts(self, column: str) -> dict[str, int]:
        return dict(sorted(Counter(self.labels[column]).items()))

    def subsample(self, n: int | None, seed: int = 0) -> TextCorpus:
        """At most n texts, drawn without replacement (deterministic); the corpus itself if n is None."""
        if n is None or len(self) <= n:
            return self
        idx = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return TextCorpus(
            [self.texts[i] for i in idx],
            {c: [v[i] for i in idx] for c, v in self.labels.items()},
            self.source,
            self.name,
            self.epsilon,
            {**self.meta, "subsampled_from": len(self)},
            None if self.weights is None else [self.weights[i] for i in idx],
        )


def norm_label(value: Any) -> str | None:
    """A label as a string, with the rule of `augpe.records.data` (5, 5.0 and "5" are one class); None if missing."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value))
    s = str(value).strip()
    return s or None


# ---- runs -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunInfo:
    """What an evaluation needs to know about a run folder (all release-safe)."""

    run_dir: Path
    text_column: str
    label_columns: list[str]
    class_names: list[str]  # sorted, as the pipeline numbers classes (class_id indexes this list)
    epsilon: float | None
    iterations: int | None
    embedding_model: str
    summary: dict[str, Any]


def is_run_dir(path: str | Path) -> bool:
    return Path(path).is_dir() and RunFolder.open(path).finished


def run_info(run_dir: str | Path) -> RunInfo:
    root = Path(run_dir)
    if not root.is_dir():
        raise EvalError(
            f"{root} is not a folder; give a run folder (with {CORPUS_FILE}) or a corpus file"
        )
    folder = RunFolder.open(root)
    if not folder.finished:
        raise EvalError(
            f"{root} is not a finished augpe run folder: no {CORPUS_FILE} "
            "(was the run interrupted? finish it with `augpe run --resume`)"
        )
    cfg, summary = folder.config(), folder.summary()
    data = cfg.get("data") or {}
    label_columns = list(data.get("label_columns") or [])
    # class_id in state/ indexes the sorted class names; summary.json lists every class.
    names = list(
        (summary.get("target_samples_per_class") or summary.get("samples_per_class") or {}).keys()
    )
    if not names:
        names = sorted({r["class"] for r in _read_jsonl(folder.layout.corpus)})
    eps = summary.get("epsilon")
    if eps is None and isinstance(cfg.get("privacy"), dict):
        eps = cfg["privacy"].get("epsilon")
    if not label_columns:
        rows = _read_jsonl(folder.layout.corpus)
        if rows and isinstance(rows[0].get("labels"), dict):
            label_columns = list(rows[0]["labels"])
    return RunInfo(
        run_dir=root,
        text_column=str(data.get("text_column") or "text"),
        label_columns=label_columns,
        class_names=sorted(names),
        epsilon=_as_float(eps),
        iterations=(summary.get("iterations") or (cfg.get("pe") or {}).get("iterations")),
        embedding_model=str((cfg.get("embedding") or {}).get("model") or "default"),
        summary=summary,
    )


def _as_float(v: Any) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read {path}: {err}") from None
    return jsonl_records(text, path)


def read_synthetic_jsonl(
    path: str | Path, name: str = "synthetic", epsilon: float | None = None
) -> TextCorpus:
    """A corpus in the pipeline's synthetic.jsonl layout (text, class, labels{col: value}, ...)."""
    p = Path(path)
    rows = _read_jsonl(p)
    if not rows:
        raise DataError(
            f"{p}: the synthetic corpus is empty (no samples); there is nothing to evaluate"
        )
    texts: list[str] = []
    columns: list[str] | None = None
    labels: dict[str, list[str]] = {}
    iterations: list[int] = []
    weights: list[float] = []
    weighted = "weight" in rows[0]
    for i, r in enumerate(rows, start=1):
        if weighted != ("weight" in r):
            raise DataError(
                f"{p}: line {i} {'lacks' if weighted else 'has'} a 'weight' (line 1 "
                f"{'has' if weighted else 'lacks'} one)"
            )
        if weighted:
            w = _as_float(r["weight"])
            if w is None or not np.isfinite(w) or w < 0:
                raise DataError(f"{p}: line {i} has weight {r['weight']!r}, not a number >= 0")
            weights.append(w)
        text = r.get("text")
        if not isinstance(text, str):
            raise DataError(f"{p}: line {i} has no 'text' string")
        lab = r.get("labels")
        if not isinstance(lab, dict):
            lab = {} if r.get("class") in (None, "all") else {"class": r.get("class")}
        if columns is None:
            columns = list(lab)
            labels = {c: [] for c in columns}
        if set(lab) != set(columns):
            raise DataError(
                f"{p}: line {i} has label columns {sorted(lab)}, line 1 has {sorted(columns)}"
            )
        for c in columns:
            v = norm_label(lab[c])
            if v is None:
                raise DataError(f"{p}: line {i} has no value for label '{c}'")
            labels[c].append(v)
        texts.append(text.strip())
        iterations.append(int(r.get("iteration") or 0))
    meta = {"iterations": iterations}
    return TextCorpus(texts, labels, str(p), name, epsilon, meta, weights if weighted else None)


def load_run_corpus(run_dir: str | Path, name: str = "synthetic") -> TextCorpus:
    info = run_info(run_dir)
    return read_synthetic_jsonl(RunFolder.open(info.run_dir).layout.corpus, name, info.epsilon)


def _population_corpus(
    info: RunInfo,
    t: int,
    name: str,
    ops: tuple[str, ...] | None = None,
    epsilon: float | None = None,
) -> TextCorpus:
    folder = RunFolder.open(info.run_dir)
    stored = folder.population_samples(t) or []
    path = folder.layout.population(t)
    samples = [s for s in stored if ops is None or s.get("op") in ops]
    texts, labels = [], {c: [] for c in info.label_columns}  # type: ignore[var-annotated]
    for s in samples:
        cid = int(s["class_id"])
        if not 0 <= cid < len(info.class_names):
            raise DataError(
                f"{path}: class_id {cid} is out of range for classes {info.class_names}"
            )
        values = class_label_values(info.class_names[cid], info.label_columns)
        texts.append(str(s["text"]).strip())
        for c, v in zip(info.label_columns, values):
            labels[c].append(v)
    return TextCorpus(texts, labels, str(path), name, epsilon)


def class_label_values(class_name: str, label_columns: list[str]) -> list[str]:
    """The per-column values of a class name ('Food | 5' -> ['Food', '5']); see augpe.records.data.CLASS_SEP."""
    if not label_columns:
        return []
    parts = class_name.split(CLASS_SEP)
    if len(parts) != len(label_columns):
        raise DataError(
            f"class '{class_name}' does not split into the label columns {label_columns}"
        )
    return parts


PRIVATE_FREE = ("random", "public")  # the initial population's ops that saw no private vote


def random_api_corpus(run_dir: str | Path) -> TextCorpus | None:
    """The eps = 0 baseline at no extra cost: the RANDOM-API samples of the initial population
    (and its public seed texts, `data.public_seed`, where a run has them).

    They were written before any private vote, so they are what the model knows without private
    data. None when the run folder has no state/population_00.json.
    """
    info = run_info(run_dir)
    if RunFolder.open(info.run_dir).population_samples(0) is None:
        return None
    corpus = _population_corpus(info, 0, "eps=0 (random API)", ops=PRIVATE_FREE, epsilon=0.0)
    return corpus if len(corpus) else None


def dp_shaped_random_api(run_dir: str | Path) -> str:
    """Which DP releases the run's RANDOM API used ("keywords", "lengths", both joined), or ""."""
    privacy = RunFolder.open(run_dir).config().get("privacy") or {}
    return " and ".join(k for k in ("keywords", "lengths") if privacy.get(k))


def population_corpora(run_dir: str | Path) -> list[tuple[int, TextCorpus]]:
    """(t, population voted on after t votes) for t = 0..T-1, from state/population_tt.json."""
    info = run_info(run_dir)
    folder = RunFolder.open(info.run_dir)
    return [(t, _population_corpus(info, t, f"population {t}")) for t, _ in folder.populations()]


# ---- tables -------------------------------------------------------------------------------------
def load_table_corpus(
    path: str | Path,
    text_column: str,
    label_columns: list[str],
    name: str = "real",
    role: str = "real test file",
    split: str = "test",
) -> TextCorpus:
    """Real text from a CSV / JSONL / Parquet file or a HF dataset; empty texts are dropped (counted)."""
    src = str(path)
    df = read_table(src, "auto", split)
    shown = ", ".join(map(str, df.columns)) or "(none)"
    for col, what in [(text_column, "text column (--text-column)")] + [
        (c, "label column (--label-columns)") for c in label_columns
    ]:
        if col not in df.columns:
            raise DataError(f"{src} ({role}): {what} '{col}' not found; available columns: {shown}")
    texts, keep = [], []
    for i, v in enumerate(df[text_column].tolist()):
        t = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()
        if t:
            texts.append(t)
            keep.append(i)
    if not texts:
        raise DataError(f"{src} ({role}): no non-empty text in column '{text_column}'")
    labels: dict[str, list[str]] = {}
    for c in label_columns:
        col = df[c].tolist()
        vals = []
        for i in keep:
            v = norm_label(col[i])
            if v is None:
                raise DataError(f"{src} ({role}): row {i + 1} has no value in label column '{c}'")
            vals.append(v)
        labels[c] = vals
    return TextCorpus(texts, labels, src, name, meta={"dropped_empty": len(df) - len(texts)})


def load_corpus(
    path: str | Path,
    text_column: str = "text",
    label_columns: list[str] | None = None,
    name: str = "",
    role: str = "corpus",
) -> TextCorpus:
    """A run folder, a synthetic.jsonl-shaped file, or a table (columns as given)."""
    p = Path(path)
    if p.is_dir() and (p / CORPUS_FILE).is_file():
        return load_run_corpus(p, name or p.name)
    if p.is_dir() and RunFolder.open(p).layout.config.is_file():
        run_info(p)  # raises the "not finished" error
    if p.is_file() and p.suffix.lower() in (".jsonl", ".ndjson") and _looks_synthetic(p):
        c = read_synthetic_jsonl(p, name or p.stem)
        if label_columns is not None:
            missing = [x for x in label_columns if x not in c.labels]
            if missing:
                raise DataError(
                    f"{p} ({role}): label column(s) {missing} not in its labels {c.label_columns}"
                )
            c = TextCorpus(
                c.texts,
                {x: c.labels[x] for x in label_columns},
                c.source,
                c.name,
                c.epsilon,
                c.meta,
            )
        return c
    return load_table_corpus(p, text_column, list(label_columns or []), name or p.stem, role)


def _looks_synthetic(p: Path) -> bool:
    try:
        with p.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    obj = json.loads(line)
                    return (
                        isinstance(obj, dict)
                        and "text" in obj
                        and isinstance(obj.get("labels"), dict)
                    )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return False
