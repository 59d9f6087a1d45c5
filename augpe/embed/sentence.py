"""sentence-transformers models by name or path; 'default' = all-MiniLM-L6-v2 shipped on PyPI."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from augpe.embed.base import default_model_path
from augpe.errors import BackendError


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
