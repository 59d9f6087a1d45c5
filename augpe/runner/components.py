"""The run's components, each built by one factory: the LLM (behind the request cache, on Ray if
asked), the embedder, and the vote (local or sharded on Ray, on the configured k-NN device)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from augpe.config import Config, GenerationConfig
from augpe.embed import Embedder, PrivateEmbeddings, make_embedder
from augpe.errors import ConfigError
from augpe.llm import make_llm
from augpe.llm.base import LLM
from augpe.llm.cache import resolve_cache_path, wrap_with_cache
from augpe.llm.mixture import MixtureLLM
from augpe.pe.apis import Writers
from augpe.pe.prompts import PromptSet, load_prompt_set
from augpe.privacy.vote import vote_histogram
from augpe.records.data import PrivateData

__all__ = [
    "build_components",
    "build_embedder",
    "build_llm",
    "build_vote",
    "build_writers",
    "check_llm",
    "overlap_private",
]


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


def check_llm(cfg: Config, llm: LLM) -> None:
    """Refuse an LLM the config cannot run on: lineage routing sends each variation to the model
    that wrote its parent, so it needs the mixture the config describes (a run builds it so; a
    caller may pass another LLM)."""
    n = len(cfg.generation.mixture)
    if cfg.generation.mixture_routing != "lineage":
        return
    if not isinstance(llm, MixtureLLM) or len(llm.members) != n:
        raise ConfigError(
            f"generation.mixture_routing: lineage sends each variation to the model that wrote "
            f"its parent, so the run's LLM must be the mixture of generation.mixture's {n} "
            f"members; it is {llm.name}"
        )


def build_writers(
    cfg: Config, llm: LLM, prompts: PromptSet, class_names: Sequence[str]
) -> Writers | None:
    """Who writes each text, when the PE APIs must choose a mixture member themselves: some member
    names its own prompt set or class descriptions, or `generation.mixture_routing` is lineage.
    None otherwise (the mixture, if any, routes each request by its seed)."""
    gen = cfg.generation
    members = [gen.mixture_member(i) for i in range(len(gen.mixture))]
    lineage = gen.mixture_routing == "lineage"
    if not members:
        return None
    sets = [prompts if m.prompts == gen.prompts else load_prompt_set(m.prompts) for m, _ in members]
    own = [m.label_descriptions for m, _ in members]
    if (
        not lineage
        and all(p is prompts for p in sets)
        and all(d == gen.label_descriptions for d in own)
    ):
        return None
    labels = [[d.get(c, c) for c in class_names] for d in own]
    check_llm(cfg, llm)
    names = [m.name for m in llm.members] if isinstance(llm, MixtureLLM) else []
    return Writers(sets, labels, [w for _, w in members], names or [""] * len(members), lineage)


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
