"""Local causal LMs through Hugging Face `transformers`: batched, left-padded, fp16/bf16 on GPU.

Requests are sorted by prompt length and decoded `batch_size` at a time with left padding (a
decoder-only model continues from the right edge, so the padding must sit on the left).

Seeds. `generate()` has no per-row random generator, so sampling is done here by a logits
processor: every request owns a `torch.Generator` seeded with its `GenerationRequest.seed` and
draws one uniform number per decoding step, which picks the token by inverse CDF over the
temperature / top-p distribution; the processor then leaves only that token for the (greedy)
search. A request therefore draws the same random numbers whatever batch it lands in; the
sampled text is reproducible across batch orders up to floating-point differences in the logits
of differently padded batches (on CPU in fp32 these are rare; on GPU in bf16 less so).

Per-row `max_tokens` and stop strings are enforced by a stopping criterion, so a short request
in a batch of long ones does not produce (or pay for) extra tokens.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from augpe.config import TransformersGeneration
from augpe.errors import BackendError, ConfigError, missing_dependency
from augpe.llm.base import Generation, GenerationRequest, Message, OnResult, Usage, progress_bar
from augpe.llm.batching import isolate_failures
from augpe.llm.chat import answer_prefix, transcript
from augpe.llm.cost import Budget, CostMeter, Metered, Prices

__all__ = ["TransformersLLM", "resolve_device_dtype"]

log = logging.getLogger("augpe")

_DTYPES = {
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
}


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is a base dependency
        raise missing_dependency("torch") from err
    return torch


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as err:
        raise missing_dependency("transformers", extra="transformers") from err
    return transformers


def resolve_device_dtype(device: str | None, dtype: str) -> tuple[str, Any]:
    """Device (GPU when there is one) and dtype: bf16 where the GPU has it, else fp16; fp32 on CPU."""
    torch = _import_torch()
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"generation.device: {dev!r} asked for, but torch sees no CUDA GPU")
    if dtype == "auto":
        if dev.startswith("cuda"):
            return dev, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return dev, torch.float32
    if dtype not in _DTYPES:
        raise ConfigError(
            f"generation.dtype: unknown dtype {dtype!r}; use auto, float16, bfloat16 or float32"
        )
    if dev == "cpu" and _DTYPES[dtype] == "float16":
        log.warning("generation.dtype: float16 on CPU is slow and unsupported by some layers")
    return dev, getattr(torch, _DTYPES[dtype])


def _make_sampler(
    torch: Any, transformers: Any, requests: Sequence[GenerationRequest], device: Any
) -> Any:
    """A LogitsProcessor that samples each row with the row's own seeded generator."""

    class SeededSampler(transformers.LogitsProcessor):  # type: ignore[misc]
        def __init__(self) -> None:
            self.gens = [torch.Generator().manual_seed(int(r.seed) % (2**63)) for r in requests]
            self.temps = torch.tensor([float(r.temperature) for r in requests], device=device)
            self.top_p = torch.tensor([float(r.top_p) for r in requests], device=device)

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            u = torch.stack([torch.rand((), generator=g) for g in self.gens]).to(device)
            logits = scores.float()
            greedy = logits.argmax(dim=-1)
            probs = torch.softmax(logits / self.temps.clamp(min=1e-5)[:, None], dim=-1)
            sorted_p, order = probs.sort(dim=-1, descending=True)
            cum = sorted_p.cumsum(dim=-1)
            sorted_p = sorted_p * (
                (cum - sorted_p) < self.top_p[:, None]
            )  # nucleus; keeps the top one
            cum = sorted_p.cumsum(dim=-1)
            target = (u * cum[:, -1]).unsqueeze(-1).contiguous()
            pick = torch.searchsorted(cum.contiguous(), target).clamp(max=cum.shape[-1] - 1)
            token = order.gather(-1, pick).squeeze(-1)
            token = torch.where(self.temps <= 0, greedy, token)
            out = torch.full_like(scores, float("-inf"))
            out.scatter_(1, token[:, None], 0.0)
            return out

    return SeededSampler()


def _make_stopper(
    transformers: Any, tokenizer: Any, requests: Sequence[GenerationRequest], prompt_len: int
) -> Any:
    """Per-row stop: the row's own max_tokens reached, or one of its stop strings produced."""
    import torch

    class RowStop(transformers.StoppingCriteria):  # type: ignore[misc]
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            n = input_ids.shape[1] - prompt_len
            done = [n >= r.max_tokens for r in requests]
            for i, r in enumerate(requests):
                if not done[i] and r.stop:
                    tail = tokenizer.decode(input_ids[i, prompt_len:], skip_special_tokens=True)
                    done[i] = any(s in tail for s in r.stop)
            return torch.tensor(done, device=input_ids.device)

    return RowStop()


class TransformersLLM(Metered):
    """A `transformers` causal LM behind the LLM Protocol."""

    supports_on_result = True

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str = "transformers:model",
        batch_size: int = 16,
        show_progress: bool = True,
        prices: Prices | None = None,
        budget: Budget | None = None,
        ignore_eos: bool = False,
    ) -> None:
        self._torch = _import_torch()
        self._tf = _import_transformers()
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = next(model.parameters()).device
        self.name = name
        self.cache_id = f"{name}@{getattr(model.config, '_name_or_path', '')}"
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.ignore_eos = ignore_eos  # benchmarks on random weights: always decode max_tokens
        self.usage = Usage()
        self.meter = CostMeter(prices, budget, count_prompt=self._count_prompt)

    @classmethod
    def from_pretrained(
        cls,
        model: str,
        *,
        device: str | None = None,
        dtype: str = "auto",
        batch_size: int = 16,
        show_progress: bool = True,
        prices: Prices | None = None,
        budget: Budget | None = None,
    ) -> TransformersLLM:
        tf = _import_transformers()
        dev, torch_dtype = resolve_device_dtype(device, dtype)
        source, extra = model, {}
        local = Path(model).expanduser()
        if local.exists():
            source = str(local)
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local model needs no hub
            if local.is_file() and local.suffix == ".gguf":
                # transformers dequantises GGUF files (needs the `gguf` package): the same weights
                # as the embedded backend, in fp32/fp16/bf16 on CPU or GPU.
                source, extra = str(local.parent), {"gguf_file": local.name}
        try:
            tok = tf.AutoTokenizer.from_pretrained(source, **extra)
            lm = tf.AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, **extra)
        except ImportError as err:
            if extra:
                raise missing_dependency("gguf") from err
            raise BackendError(
                f"generation.model: cannot load transformers model '{model}': {err}"
            ) from err
        except Exception as err:
            raise BackendError(
                f"generation.model: cannot load transformers model '{model}': {err}"
            ) from err
        lm.to(dev)
        name = f"transformers:{Path(model).stem if extra else (Path(model).name or model)}"
        return cls(
            lm,
            tok,
            name=name,
            batch_size=batch_size,
            show_progress=show_progress,
            prices=prices,
            budget=budget,
        )

    @classmethod
    def from_config(
        cls, cfg: TransformersGeneration, show_progress: bool = True, budget: Budget | None = None
    ) -> TransformersLLM:
        if not cfg.model:
            raise ConfigError(
                "generation.model: name a Hugging Face model or a local folder for backend "
                "'transformers' (e.g. HuggingFaceTB/SmolLM2-360M-Instruct)"
            )
        return cls.from_pretrained(
            cfg.model,
            device=cfg.device,
            dtype=cfg.dtype,
            batch_size=cfg.batch_size,
            show_progress=show_progress,
            prices=Prices(cfg.price_per_1k_input, cfg.price_per_1k_output),
            budget=budget or Budget(cfg.max_cost),
        )

    # ---- prompts -----------------------------------------------------------------------------
    def render(self, messages: Sequence[Message]) -> str:
        """The model's chat template, or a plain transcript for a model without one. A last
        assistant turn (a prompt set's `answer_prefix`) is continued, not closed."""
        if getattr(self.tokenizer, "chat_template", None):
            prefilled = bool(answer_prefix(messages)[1])
            text: str = self.tokenizer.apply_chat_template(
                list(messages),
                tokenize=False,
                add_generation_prompt=not prefilled,
                continue_final_message=prefilled,
            )
            return text
        return transcript(messages)

    def _count_prompt(self, req: GenerationRequest) -> int:
        return len(self.tokenizer(self.render(req.messages), add_special_tokens=False)["input_ids"])

    # ---- decoding ----------------------------------------------------------------------------
    def _batch(
        self, requests: Sequence[GenerationRequest], prompts: Sequence[str]
    ) -> list[Generation]:
        torch = self._torch
        tok = self.tokenizer
        has_template = bool(getattr(tok, "chat_template", None))
        enc = tok(
            list(prompts), return_tensors="pt", padding=True, add_special_tokens=not has_template
        ).to(self.device)
        prompt_len = enc["input_ids"].shape[1]
        eos = tok.eos_token_id
        longest = max(r.max_tokens for r in requests)
        gen_cfg = self._tf.GenerationConfig(
            max_new_tokens=longest,
            # ignore_eos: min_new_tokens masks EOS, so every row decodes its full max_tokens
            min_new_tokens=longest if self.ignore_eos else None,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                generation_config=gen_cfg,
                logits_processor=self._tf.LogitsProcessorList(
                    [_make_sampler(torch, self._tf, requests, self.device)]
                ),
                stopping_criteria=self._tf.StoppingCriteriaList(
                    [_make_stopper(self._tf, tok, requests, prompt_len)]
                ),
            )
        results = []
        for i, r in enumerate(requests):
            ids = out[i, prompt_len:].tolist()[: r.max_tokens]
            n, finish = len(ids), "length"
            for j, t in enumerate(ids):
                if t == eos or t == tok.pad_token_id:  # EOS, or the padding of a finished row
                    n, finish = j + (1 if t == eos else 0), "stop"
                    break
            text = tok.decode(ids[:n], skip_special_tokens=True)
            for s in r.stop:
                cut = text.find(s)
                if cut >= 0:
                    text, finish = text[:cut], "stop"
            results.append(
                Generation(
                    text=text,
                    prompt_tokens=int(enc["attention_mask"][i].sum()),
                    completion_tokens=n,
                    finish_reason=finish,
                    model=self.name,
                )
            )
        return results

    def _safe_batch(
        self, requests: Sequence[GenerationRequest], prompts: Sequence[str]
    ) -> list[Generation]:
        """A failing batch is split until the culprit is alone (GPU OOM: smaller batches pass)."""

        def run(pairs: Sequence[tuple[GenerationRequest, str]]) -> list[Generation]:
            return self._batch([r for r, _ in pairs], [p for _, p in pairs])

        def free_gpu() -> None:
            if self.device.type == "cuda":
                self._torch.cuda.empty_cache()

        return isolate_failures(run, list(zip(requests, prompts)), self.name, on_error=free_gpu)

    # ---- the Protocol ------------------------------------------------------------------------
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        desc: str = "",
        on_result: OnResult | None = None,
    ) -> list[Generation]:
        if not requests:
            return []
        out: list[Generation | None] = [None] * len(requests)
        with (
            self.metered(requests, desc),
            progress_bar(len(requests), desc, self.show_progress) as bar,
        ):
            prompts = [self.render(r.messages) for r in requests]
            lengths = [
                len(self.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts
            ]
            # Similar lengths together: less padding, and similar max_tokens waste fewer steps.
            order = sorted(range(len(requests)), key=lambda i: (lengths[i], requests[i].max_tokens))
            for k in range(0, len(order), self.batch_size):
                idx = order[k : k + self.batch_size]
                gens = self._safe_batch([requests[i] for i in idx], [prompts[i] for i in idx])
                for i, g in zip(idx, gens):
                    out[i] = g
                    self.count(i, g, desc, on_result)
                bar.update(len(idx))
                bar.set_postfix(**self.meter.postfix(), refresh=False)
        return [g for g in out if g is not None]

    def close(self) -> None:
        self.model = None
        if self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()
