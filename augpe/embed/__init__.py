"""Sentence embeddings: the Protocol (`base`), the sentence-transformers embedder (`sentence`),
the private-embedding cache and overlap (`private`), and the one factory, `make_embedder`."""

from __future__ import annotations

from augpe.config import EmbeddingConfig
from augpe.embed.base import Embedder, default_model_path
from augpe.embed.private import PrivateEmbeddings, embed_private
from augpe.embed.sentence import SentenceTransformerEmbedder

__all__ = [
    "Embedder",
    "PrivateEmbeddings",
    "SentenceTransformerEmbedder",
    "default_model_path",
    "embed_private",
    "make_embedder",
]


def make_embedder(cfg: EmbeddingConfig, show_progress: bool = True) -> Embedder:
    """The embedder of an `embedding` config section: every caller builds it here."""
    return SentenceTransformerEmbedder(
        cfg.model,
        cfg.device,
        cfg.batch_size,
        show_progress=show_progress,
        max_seq_length=cfg.max_seq_length,
    )
