"""LLM backends behind one Protocol; `make_llm` picks one from `generation.backend`.

The Protocol (`LLM`) and its defaults (`BaseLLM`) are in `augpe.llm.base`, the backends in
`augpe.llm.backends`, one module each; heavy or optional backends are imported lazily, so the
base install needs none of them.
"""

from __future__ import annotations

from augpe.config import GenerationConfig
from augpe.errors import ConfigError
from augpe.llm.base import LLM, BaseLLM, Generation, GenerationRequest, Message, Usage

__all__ = ["LLM", "BaseLLM", "Generation", "GenerationRequest", "Message", "Usage", "make_llm"]


def make_llm(cfg: GenerationConfig, show_progress: bool = True) -> LLM:
    """The backend `cfg` asks for, or a weighted mixture of backends when `generation.mixture` is set.

    Every backend of one run shares one Budget, so `generation.max_cost` bounds the whole run.
    The request cache is not added here (its default path depends on the run folder): wrap the
    result with `augpe.llm.cache.wrap_with_cache(llm, resolve_cache_path(cfg, output_dir))`.
    """
    from augpe.llm.cost import Budget

    budget = Budget(cfg.max_cost)

    def one(c: GenerationConfig) -> LLM:
        if c.backend == "embedded":
            from augpe.llm.backends.embedded import EmbeddedLLM

            return EmbeddedLLM(
                c.model, c.n_parallel, c.n_ctx_per_slot, c.threads, show_progress, c.deterministic
            )
        if c.backend == "openai":
            from augpe.llm.backends.openai import OpenAILLM

            return OpenAILLM.from_config(c, show_progress=show_progress, budget=budget)
        if c.backend == "vllm":
            from augpe.llm.backends.vllm import VLLMLLM

            return VLLMLLM.from_config(c, show_progress=show_progress, budget=budget)
        if c.backend == "transformers":
            from augpe.llm.backends.transformers import TransformersLLM

            return TransformersLLM.from_config(c, show_progress=show_progress, budget=budget)
        raise ConfigError(f"generation.backend: unknown backend {c.backend!r}")

    if not cfg.mixture:
        return one(cfg)
    from augpe.llm.mixture import MixtureLLM

    members: list[tuple[LLM, float]] = []
    try:
        for i in range(len(cfg.mixture)):
            member_cfg, weight = cfg.mixture_member(i)
            members.append((one(member_cfg), weight))
    except BaseException:
        for m, _ in members:  # do not leave loaded models / event loops behind
            m.close()
        raise
    return MixtureLLM(members)
