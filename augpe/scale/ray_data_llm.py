"""vLLM on a Ray cluster through Ray Data LLM (`ray.data.llm`): `backend: vllm` + `engine: ray`.

UNTESTED HERE: this machine has no GPU and no vllm, so only the request/answer mapping below is
tested (tests/scale/test_ray_llm.py); the engine call is written against Ray's documented API
(`vLLMEngineProcessorConfig`, `build_processor`, named `build_llm_processor` before Ray 2.5x)
and has not run. Ray Data starts `execution.replicas` vLLM engines (each with
`generation.tensor_parallel_size` GPUs), feeds them batches of `execution.batch_size` rows with
continuous batching, and returns one row per request.

Every row carries its request's index and its own `sampling_params` (temperature, top_p,
max_tokens, stop and the request's `seed`, which vLLM honours per request), so a sample does not
depend on which engine served it or what else was in its batch. Rows that fail come back with
`__inference_error__` (should_continue_on_error) and become failed generations, never dropped.
Install: `pip install 'augpe[ray]' 'ray[llm]' vllm` on the cluster's GPU nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from augpe.config import ExecutionConfig, GenerationConfig, VLLMGeneration
from augpe.errors import BackendError, ConfigError
from augpe.llm.base import Generation, GenerationRequest, OnResult, Usage
from augpe.llm.cost import Budget, CostMeter, Metered, Prices
from augpe.scale.cluster import connect

__all__ = ["RayDataVLLM", "answer_of", "postprocess", "preprocess", "request_row"]

ERROR_COLUMN = "__inference_error__"


def request_row(i: int, r: GenerationRequest) -> dict[str, Any]:
    """One dataset row per request; every row has the same columns (Arrow wants one schema)."""
    return {
        "augpe_idx": i,
        "messages": [dict(m) for m in r.messages],
        "temperature": float(r.temperature),
        "top_p": float(r.top_p),
        "max_tokens": int(r.max_tokens),
        "seed": int(r.seed),
        "stop": list(r.stop),
    }


def preprocess(row: dict[str, Any]) -> dict[str, Any]:
    """Row -> what the vLLM stage reads: chat messages and per-row sampling parameters."""
    params: dict[str, Any] = {
        "n": 1,
        "temperature": row["temperature"],
        "top_p": row["top_p"],
        "max_tokens": row["max_tokens"],
        "seed": row["seed"],
    }
    if len(row["stop"]):
        params["stop"] = [str(s) for s in row["stop"]]
    return {"augpe_idx": row["augpe_idx"], "messages": row["messages"], "sampling_params": params}


def postprocess(row: dict[str, Any]) -> dict[str, Any]:
    """The engine's row -> index, text and token counts (the columns `answer_of` reads)."""
    return {
        "augpe_idx": row["augpe_idx"],
        "generated_text": row.get("generated_text"),
        "num_input_tokens": int(row.get("num_input_tokens") or 0),
        "num_generated_tokens": int(row.get("num_generated_tokens") or 0),
    }


def answer_of(row: dict[str, Any], model: str) -> Generation:
    err = row.get(ERROR_COLUMN)
    if err:
        return Generation(text=None, model=model, error=str(err))
    text = row.get("generated_text")
    if text is None:
        return Generation(text=None, model=model, error="no generated_text in the engine's row")
    return Generation(
        text=str(text),
        prompt_tokens=int(row.get("num_input_tokens") or 0),
        completion_tokens=int(row.get("num_generated_tokens") or 0),
        model=model,
    )


def _import_ray_data_llm() -> Any:
    try:
        from ray.data import llm
    except ImportError as err:
        raise BackendError(
            "execution.vllm=ray_data needs Ray Data LLM and vLLM: pip install 'ray[llm]' vllm "
            f"(or set execution.vllm: actors); import failed: {err}"
        ) from err
    return llm


class RayDataVLLM(Metered):
    """vLLM engines managed by Ray Data; one `generate` call = one dataset through the processor."""

    supports_on_result = False  # answers arrive together, when the dataset is done

    def __init__(
        self,
        model: str,
        execution: ExecutionConfig,
        *,
        engine_kwargs: dict[str, Any] | None = None,
        batch_size: int = 64,
        prices: Prices | None = None,
        budget: Budget | None = None,
        show_progress: bool = True,
    ) -> None:
        self._ray = connect(execution)
        rdl = _import_ray_data_llm()
        self.config = rdl.vLLMEngineProcessorConfig(
            model_source=model,
            engine_kwargs=engine_kwargs or {},
            concurrency=execution.replicas,
            batch_size=batch_size,
            runtime_env=execution.runtime_env,
            should_continue_on_error=True,
        )
        build = getattr(rdl, "build_processor", None) or rdl.build_llm_processor
        self.processor = build(self.config, preprocess=preprocess, postprocess=postprocess)
        self.name = f"vllm:{model.rstrip('/').rsplit('/', 1)[-1]}"
        self.cache_id = f"vllm:{model}/chat"  # same key space as the local vllm backend
        self.show_progress = show_progress
        self.usage = Usage()
        self.meter = CostMeter(prices, budget)

    @classmethod
    def from_config(
        cls, cfg: GenerationConfig, execution: ExecutionConfig, show_progress: bool = True
    ) -> RayDataVLLM:
        if not isinstance(cfg, VLLMGeneration):
            raise ConfigError(
                f"execution.engine: Ray Data LLM runs the vllm backend, not '{cfg.backend}'"
            )
        if not cfg.model:
            raise ConfigError("generation.model: name a model for backend 'vllm'")
        if cfg.api != "chat":
            raise ConfigError("generation.api: Ray Data LLM runs chat requests; use api: chat")
        engine: dict[str, Any] = {
            "tensor_parallel_size": cfg.tensor_parallel_size,
            "dtype": cfg.dtype,
            "gpu_memory_utilization": cfg.gpu_memory_utilization,
        }
        if cfg.max_model_len is not None:
            engine["max_model_len"] = cfg.max_model_len
        return cls(
            cfg.model,
            execution,
            engine_kwargs=engine,
            batch_size=max(execution.batch_size, 16),
            prices=Prices(cfg.price_per_1k_input, cfg.price_per_1k_output),
            budget=Budget(cfg.max_cost),
            show_progress=show_progress,
        )

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        desc: str = "",
        on_result: OnResult | None = None,
    ) -> list[Generation]:
        if not requests:
            return []
        import ray.data

        with self.metered(requests, desc):
            ds = ray.data.from_items([request_row(i, r) for i, r in enumerate(requests)])
            rows = self.processor(ds).take_all()
            by_idx = {int(r["augpe_idx"]): r for r in rows}
            gens = [
                answer_of(by_idx[i], self.name)
                if i in by_idx
                else Generation(
                    text=None, model=self.name, error="row missing from Ray Data output"
                )
                for i in range(len(requests))
            ]
            for i, g in enumerate(gens):
                self.count(i, g, desc, on_result)
        return gens

    def close(self) -> None:
        self.processor = None
