"""The run's components, each built by one factory: the LLM (behind the request cache, on Ray if
asked), the embedder, and the vote (local or sharded on Ray, on the configured k-NN device)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from augpe.config import Config, GenerationConfig
from augpe.embed import Embedder, PrivateEmbeddings, make_embedder
from augpe.llm import make_llm
from augpe.llm.base import LLM
from augpe.llm.cache import resolve_cache_path, wrap_with_cache
from augpe.privacy.vote import vote_histogram
from augpe.records.data import PrivateData

__all__ = ["build_components", "build_embedder", "build_llm", "build_vote", "overlap_private"]


def build_llm(cfg: Config, show_progress: bool = True) -> LLM:
    """The configured backend (or mixture) behind the persistent request cache."""
    if cfg.execution.engine == "ray":  # replicas on Ray; the cache stays here, on the driver
        from augpe.scale.ray_llm import make_ray_llm

        llm = make_ray_llm(cfg.generation, cfg.execution, show_progress=show_progress)
    else:
        llm = make_llm(cfg.generation, show_progress=show_progress)
    private = math.isfinite(cfg.privacy.epsilon)
    return wrap_with_cache(llm, resolve_cache_path(cfg.generation, cfg.output.dir, private=private))


def build_embedder(cfg: Config, show_progress: bool = True) -> Embedder:
    return make_embedder(cfg.embedding, show_progress=show_progress)


def build_components(cfg: Config, show_progress: bool = True) -> tuple[LLM, Embedder]:
    """Both models, loaded once per run."""
    return build_llm(cfg, show_progress), build_embedder(cfg, show_progress)


def overlap_private(cfg: Config) -> bool:
    """Whether the private embedding runs alongside the initial generation (`embedding.overlap`):
    `auto` is on unless generator and embedder would fight for the same local CPU."""
    if cfg.embedding.overlap != "auto":
        return cfg.embedding.overlap == "on"
    if cfg.embedding.device != "cpu":
        return True
    gen = cfg.generation
    members = [gen.mixture_member(i)[0] for i in range(len(gen.mixture))] or [gen]

    def on_cpu(g: GenerationConfig) -> bool:
        if g.backend == "embedded":
            return True
        if g.backend != "transformers":
            return False  # a server (openai-compatible) or vLLM on a GPU
        if g.device is not None:
            return str(g.device) == "cpu"
        import torch

        return not torch.cuda.is_available()

    return not any(on_cpu(g) for g in members)


def build_vote(
    cfg: Config, data: PrivateData, private: PrivateEmbeddings
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """vote(synthetic embeddings, their classes) -> the CLEAN histogram (the loop noises it)."""
    pe: Any = cfg.pe
    label_bins = len(data.class_names) if pe.relabel else 0  # cross-class vote: C bins a sample

    def vote(emb: np.ndarray, classes: np.ndarray) -> np.ndarray:
        if cfg.execution.engine == "ray":  # private shards on the cluster: the same histogram
            from augpe.scale.ray_vote import sharded_vote

            return sharded_vote(cfg, private, data).histogram(
                emb, classes, pe.k, pe.distance, pe.vote_chunk, pe.knn_device, label_bins
            )
        from augpe.embed.knn_device import knn_device_setting

        return vote_histogram(
            private.get(),
            data.class_ids,
            emb,
            classes,
            pe.k,
            pe.distance,
            data.user_ids,
            pe.vote_chunk,
            device=knn_device_setting(pe.knn_device),
            label_bins=label_bins,
        )

    return vote
