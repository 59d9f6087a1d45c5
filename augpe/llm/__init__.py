"""LLM backends behind one Protocol; `make_llm` picks one from `generation.backend`.

The Protocol (`LLM`) and its defaults (`BaseLLM`) are in `augpe.llm.base`, the backends in
`augpe.llm.backends`, one module each; heavy or optional backends are imported lazily, so the
base install needs none of them.
"""

from __future__ import annotations

import importlib
from typing import Any

from augpe.config import GenerationConfig
from augpe.errors import ConfigError
from augpe.llm.base import LLM, BaseLLM, Generation, GenerationRequest, Message, Usage

__all__ = [
    "BACKENDS",
    "LLM",
    "BaseLLM",
    "Generation",
    "GenerationRequest",
    "Message",
    "Usage",
    "backend_class",
    "make_llm",
]


BACKENDS: dict[str, str] = {
    "embedded": "augpe.llm.backends.embedded:EmbeddedLLM",
    "openai": "augpe.llm.backends.openai:OpenAILLM",
    "vllm": "augpe.llm.backends.vllm:VLLMLLM",
    "transformers": "augpe.llm.backends.transformers:TransformersLLM",
}
"""generation.backend -> the backend class (`module:Class`, imported only when used: heavy or
optional backends cost nothing until asked for). Each has `from_config(cfg, show_progress,
budget)`. A new provider: one module under `llm/backends/` and one line here."""


def backend_class(name: str) -> Any:
    """The class registered for `generation.backend` = `name`."""
    if name not in BACKENDS:
        raise ConfigError(
            f"generation.backend: unknown backend {name!r}; one of {sorted(BACKENDS)}"
        )
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_llm(cfg: GenerationConfig, show_progress: bool = True) -> LLM:
    """The backend `cfg` asks for, or a weighted mixture of backends when `generation.mixture` is set.

    Every backend of one run shares one Budget, so `generation.max_cost` bounds the whole run.
    The request cache is not added here (its default path depends on the run folder): wrap the
    result with `augpe.llm.cache.wrap_with_cache(llm, resolve_cache_path(cfg, output_dir))`.
    """
    from augpe.llm.cost import Budget

    budget = Budget(cfg.max_cost)

    def one(c: GenerationConfig) -> LLM:
        llm: LLM = backend_class(c.backend).from_config(
            c, show_progress=show_progress, budget=budget
        )
        return llm

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
