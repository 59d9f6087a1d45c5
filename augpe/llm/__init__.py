"""LLM backends behind one Protocol; `make_llm` picks one from `generation.backend`.

Heavy or optional backends are imported lazily, so the base install needs none of them.
"""

from __future__ import annotations

from augpe.config import GenerationConfig
from augpe.errors import ConfigError
from augpe.llm.base import LLM, Generation, GenerationRequest, Message, Usage

__all__ = ["LLM", "Generation", "GenerationRequest", "Message", "Usage", "make_llm"]


def make_llm(cfg: GenerationConfig, show_progress: bool = True) -> LLM:
    if cfg.backend == "embedded":
        from augpe.llm.embedded import EmbeddedLLM

        return EmbeddedLLM(cfg.model, cfg.n_parallel, cfg.n_ctx_per_slot, cfg.threads, show_progress)
    if cfg.backend == "openai":
        from augpe.llm.openai_backend import OpenAILLM

        return OpenAILLM.from_config(cfg, show_progress=show_progress)
    if cfg.backend == "vllm":
        from augpe.llm.vllm_backend import VLLMLLM

        return VLLMLLM.from_config(cfg, show_progress=show_progress)
    if cfg.backend == "transformers":
        from augpe.llm.transformers_backend import TransformersLLM

        return TransformersLLM.from_config(cfg, show_progress=show_progress)
    raise ConfigError(f"generation.backend: unknown backend {cfg.backend!r}")
