"""What an evaluation measures (`EvalOptions`), where it writes, and the embedder it measures with.

`CachedEmbedder` keeps every vector in memory only, so the real test set, or a corpus seen by
several metrics, is embedded once per process; the on-disk private cache is `augpe.evaluate.cache`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from augpe.embed import Embedder
from augpe.evaluate.corpus import EvalError
from augpe.evaluate.downstream import FinetuneSettings
from augpe.evaluate.nextword import LMSettings

__all__ = ["TIERS", "CachedEmbedder", "EvalOptions", "default_out_dir", "make_eval_embedder"]

log = logging.getLogger("augpe")
TIERS = ("fast", "paper")


class CachedEmbedder:
    """An Embedder that remembers every text it has embedded (in memory only), so the real test
    set, or the same corpus seen by several metrics, is embedded once per process."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str], desc: str = "") -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            what = desc.removeprefix("embed ") or "texts"
            log.info("eval: %s, embedding %d texts with %s", what, len(todo), self.name)
            for t, v in zip(todo, self.inner.encode(todo, desc=desc)):
                self._cache[t] = v
        if not texts:
            return self.inner.encode([], desc=desc)
        return np.stack([self._cache[t] for t in texts]).astype(np.float32)


@dataclass
class EvalOptions:
    """What to measure. The defaults are the fast CPU evaluation (seconds to a minute): the
    embedding probe, and the bag-of-words learner next to it (`independent`)."""

    tiers: tuple[str, ...] = ("fast",)
    # The bag-of-words learner ("bow" tier, augpe.evaluate.independent): on by default, because
    # it is the one measurement the pipeline's own embedding space cannot flatter.
    independent: bool = True
    curve_draws: int = 5  # real-data learning curve: seeded draws per size (with real_train)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    nextword: LMSettings | None = None  # None: skip next-word prediction
    fidelity: bool = True
    per_iteration: bool = True
    knn_k: int = 3
    max_real_train: int | None = None  # subsample the real upper-bound training set (speed)
    C: float | None = None  # logistic regression of the fast tier; None: cross-validated
    plots: bool = True
    embedding_model: str | None = None  # None: the run's embedding.model (or the default MiniLM)
    embedding_device: str = "cpu"  # where the evaluation's sentence embedder runs (cuda: a GPU)
    embedding_batch_size: int = 64

    def __post_init__(self) -> None:
        bad = [t for t in self.tiers if t not in TIERS]
        if bad or not self.tiers:
            raise EvalError(f"unknown evaluation tier(s) {bad}; use {', '.join(TIERS)}")
        if self.curve_draws < 1:
            raise EvalError(f"curve_draws must be at least 1, not {self.curve_draws}")


def default_out_dir(corpus: str | Path) -> Path:
    p = Path(corpus)
    return p.with_name(p.name + ".eval") if p.is_dir() else p.with_name(p.stem + ".eval")


def make_eval_embedder(model: str, opts: EvalOptions, show_progress: bool) -> CachedEmbedder:
    """The sentence embedder of an evaluation, on `opts.embedding_device`, remembering its texts."""
    from augpe.embed import SentenceTransformerEmbedder

    return CachedEmbedder(
        SentenceTransformerEmbedder(
            model, opts.embedding_device, opts.embedding_batch_size, show_progress=show_progress
        )
    )
