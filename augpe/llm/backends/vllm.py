"""vLLM's offline engine (`vllm.LLM`): the fastest way to run an open model on your own GPUs.

A whole iteration's requests go to the engine in one `LLM.chat` call (one conversation and one
`SamplingParams` per request); vLLM schedules them with continuous batching and PagedAttention.
Each request's seed goes into `SamplingParams(seed=...)`, which vLLM honours per request, so a
sample does not depend on what else was in the batch. `tensor_parallel_size` spreads the model
over several GPUs of one machine.

vLLM rejects a whole call when one prompt is invalid (e.g. longer than the context); we then
split the batch until the offending request is alone, so only that sample fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from augpe.config import VLLMGeneration
from augpe.errors import BackendError, ConfigError, missing_dependency
from augpe.llm.base import Generation, GenerationRequest, OnResult, Usage
from augpe.llm.batching import isolate_failures
from augpe.llm.chat import messages_to_prompt
from augpe.llm.cost import Budget, CostMeter, Metered, Prices

__all__ = ["VLLMLLM"]


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as err:
        raise missing_dependency("vllm", extra="vllm") from err
    return vllm


class VLLMLLM(Metered):
    """An in-process vLLM engine behind the LLM Protocol."""

    supports_on_result = True

    def __init__(
        self,
        model: str,
        *,
        api: str = "chat",
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        seed: int = 0,
        show_progress: bool = True,
        prices: Prices | None = None,
        budget: Budget | None = None,
        ignore_eos: bool = False,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self._vllm = _import_vllm()
        if api not in ("chat", "completions"):
            raise ConfigError(f"generation.api: must be 'chat' or 'completions', got {api!r}")
        kwargs: dict[str, Any] = {
            "model": model,
            "tensor_parallel_size": tensor_parallel_size,
            "dtype": dtype,
            "gpu_memory_utilization": gpu_memory_utilization,
            "seed": seed,
        }
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        kwargs.update(engine_kwargs or {})
        try:
            self._engine: Any = self._vllm.LLM(**kwargs)
        except Exception as err:
            raise BackendError(
                f"generation.model: vLLM cannot load '{model}': {type(err).__name__}: {err}"
            ) from err
        self.api = api
        self.name = f"vllm:{Path(model).name or model}"
        self.cache_id = f"vllm:{model}/{api}"
        self.show_progress = show_progress
        self.ignore_eos = ignore_eos
        self.usage = Usage()
        self.meter = CostMeter(prices, budget)

    @classmethod
    def from_config(
        cls, cfg: VLLMGeneration, show_progress: bool = True, budget: Budget | None = None
    ) -> VLLMLLM:
        if not cfg.model:
            raise ConfigError(
                "generation.model: name a Hugging Face model or a local folder for backend 'vllm' "
                "(e.g. meta-llama/Llama-3.1-8B-Instruct)"
            )
        return cls(
            cfg.model,
            api=cfg.api,
            tensor_parallel_size=cfg.tensor_parallel_size,
            dtype=cfg.dtype,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            max_model_len=cfg.max_model_len,
            show_progress=show_progress,
            prices=Prices(cfg.price_per_1k_input, cfg.price_per_1k_output),
            budget=budget or Budget(cfg.max_cost),
        )

    def _params(self, r: GenerationRequest) -> Any:
        kw: dict[str, Any] = {
            "n": 1,
            "temperature": r.temperature,
            "top_p": r.top_p,
            "max_tokens": r.max_tokens,
            "seed": r.seed,
        }
        if r.stop:
            kw["stop"] = list(r.stop)
        if self.ignore_eos:
            kw["ignore_eos"] = True
        return self._vllm.SamplingParams(**kw)

    def _run(self, requests: Sequence[GenerationRequest]) -> list[Any]:
        params = [self._params(r) for r in requests]
        if self.api == "chat":
            outs = self._engine.chat(
                [r.messages for r in requests], params, use_tqdm=self.show_progress
            )
        else:
            prompts = [messages_to_prompt(r.messages) for r in requests]
            outs = self._engine.generate(prompts, params, use_tqdm=self.show_progress)
        if len(outs) != len(requests):
            raise RuntimeError(f"vLLM returned {len(outs)} outputs for {len(requests)} requests")
        return list(outs)

    def _safe_run(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        def run(batch: Sequence[GenerationRequest]) -> list[Generation]:
            return [self._to_generation(o) for o in self._run(batch)]

        return isolate_failures(run, requests, self.name, "rejected")

    def _to_generation(self, o: Any) -> Generation:
        try:
            c = o.outputs[0]
            return Generation(
                text=c.text,
                prompt_tokens=len(o.prompt_token_ids or []),
                completion_tokens=len(c.token_ids or []),
                finish_reason=str(c.finish_reason or ""),
                model=self.name,
            )
        except (AttributeError, IndexError, TypeError) as err:
            return Generation(text=None, model=self.name, error=f"unexpected vLLM output: {err}")

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        desc: str = "",
        on_result: OnResult | None = None,
    ) -> list[Generation]:
        if not requests:
            return []
        with self.metered(requests, desc):
            gens = self._safe_run(requests)
            for i, g in enumerate(gens):
                self.count(i, g, desc, on_result)
        return gens

    def close(self) -> None:
        self._engine = None
