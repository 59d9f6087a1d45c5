"""What an evaluation measures (`EvalOptions`), where it writes, and the embedder it measures with.

`CachedEmbedder` keeps every vector in memory only, so the real test set, or a corpus seen by
several metrics, is embedded once per process; the on-disk private cache is `augpe.evaluate.cache`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def _on_unless(flag: str, help: str) -> Any:
    """A setting on by default that the command-line `flag` (--no-...) turns off."""
    return field(default=True, metadata={"flag": flag, "negate": True, "help": help})


@dataclass
class EvalOptions:
    """What to measure. The defaults are the fast CPU evaluation (seconds to a minute): the
    embedding probe, and the bag-of-words learner next to it (`independent`)."""

    tiers: tuple[str, ...] = field(
        default=("fast",),
        metadata={
            "flag": "--tier",
            "choices": ["fast", "paper", "both"],
            "default": "fast",
            "to": lambda v: {"fast": ("fast",), "paper": ("paper",), "both": TIERS}[v],
            "help": "fast: embeddings + logistic regression; paper: fine-tune --encoder "
            "(GPU if present); both",
        },
    )
    # The bag-of-words learner ("bow" tier, augpe.evaluate.independent): on by default, because
    # it is the one measurement the pipeline's own embedding space cannot flatter.
    independent: bool = _on_unless(
        "--no-independent",
        "skip the independent bag-of-words learner (TF-IDF word 1-2-grams + logistic "
        "regression, fixed settings), which is on by default: it shares no feature space with "
        "the pipeline, whereas the embedding probe reads the very embeddings the private "
        "records vote in (and, with privacy.centroids, the space that labels the corpus)",
    )
    curve_draws: int = field(
        default=5,
        metadata={
            "flag": "--curve-draws",
            "help": "real-data learning curve (with --real-train): seeded draws per size",
        },
    )
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    nextword: LMSettings | None = field(
        default=None,
        metadata={
            "flag": "--nextword",
            "enable": True,
            "help": "also next-word prediction (the PubMed protocol)",
        },
    )
    fidelity: bool = _on_unless("--no-fidelity", "skip FID / MAUVE / precision / recall")
    per_iteration: bool = _on_unless("--no-iterations", "skip per-iteration metrics")
    knn_k: int = field(
        default=3, metadata={"flag": "--knn-k", "help": "k of the k-NN precision / recall"}
    )
    max_real_train: int | None = field(
        default=None,
        metadata={
            "flag": "--max-real-train",
            "type": int,
            "help": "subsample the real training text (speed)",
        },
    )
    C: float | None = field(
        default=None,
        metadata={
            "flag": "--probe-c",
            "type": float,
            "help": "inverse regularisation of the embedding probe (default: 5-fold CV on the "
            "training corpus)",
        },
    )
    plots: bool = _on_unless("--no-plots", "no plots")
    embedding_model: str | None = field(
        default=None,
        metadata={
            "flag": "--embedding-model",
            "help": "sentence-transformers model (default: the run's embedding.model, else MiniLM)",
        },
    )
    embedding_device: str = field(
        default="cpu",
        metadata={"flag": "--embedding-device", "help": "where the evaluation's embedder runs"},
    )
    embedding_batch_size: int = field(
        default=64, metadata={"flag": "--embedding-batch-size", "help": "texts embedded together"}
    )

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
