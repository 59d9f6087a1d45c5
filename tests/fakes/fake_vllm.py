"""A stand-in for the `vllm` package with the documented offline API, for machines without vLLM.

`vllm.LLM(model=..., tensor_parallel_size=..., dtype=..., seed=..., ...)`,
`LLM.chat(list_of_conversations, sampling_params=list_of_SamplingParams, use_tqdm=...)` and
`LLM.generate(prompts, sampling_params, use_tqdm=...)` return one `RequestOutput` per input, in
order, with `.prompt_token_ids` and `.outputs[0].text / .token_ids / .finish_reason`;
`SamplingParams(n, temperature, top_p, max_tokens, seed, stop, ignore_eos)`.
Like vLLM, a call with one invalid prompt (here: one containing "TOO LONG") fails as a whole.
Install it with `monkeypatch.setitem(sys.modules, "vllm", make_fake_vllm())`.
"""

from __future__ import annotations

import hashlib
import json
import types
from dataclasses import dataclass, field
from typing import Any, ClassVar

WORDS = (
    "bright",
    "calm",
    "crisp",
    "deep",
    "fair",
    "fine",
    "fresh",
    "good",
    "kind",
    "light",
    "mild",
    "neat",
    "plain",
    "rich",
    "soft",
    "sweet",
    "warm",
    "wise",
)


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = 16
    seed: int | None = None
    stop: list[str] | None = None
    ignore_eos: bool = False


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput] = field(default_factory=list)


class LLM:
    instances: ClassVar[list[LLM]] = []

    def __init__(self, model: str, **kwargs: Any) -> None:
        if "does-not-exist" in model:
            raise OSError(f"{model} is not a local folder and is not a valid model identifier")
        self.model = model
        self.kwargs = kwargs
        self.calls: list[tuple[str, int]] = []  # (method, number of prompts)
        self.seen: list[str] = []  # every prompt / conversation it was given, as text
        LLM.instances.append(self)

    def _answer(self, prompt_text: str, p: SamplingParams, i: int) -> RequestOutput:
        if "TOO LONG" in prompt_text:
            raise ValueError("The decoder prompt is longer than the maximum model length")
        digest = hashlib.sha256(
            f"{prompt_text}|{p.seed}|{p.temperature}|{p.top_p}".encode()
        ).digest()
        n = min(p.max_tokens or 16, 6 + digest[0] % 6)
        words = [WORDS[b % len(WORDS)] for b in digest[1 : 1 + n]]
        text = f"Vllm {p.seed} " + " ".join(words) + "."
        return RequestOutput(
            str(i),
            None,
            list(range(len(prompt_text.split()))),
            [CompletionOutput(0, text, list(range(n + 3)), "stop")],
        )

    def chat(
        self, messages: Any, sampling_params: Any = None, use_tqdm: bool = True, **kw: Any
    ) -> list[RequestOutput]:
        convs = messages if messages and isinstance(messages[0], list) else [messages]
        params = (
            sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(convs)
        )
        assert len(params) == len(convs)
        self.calls.append(("chat", len(convs)))
        texts = [json.dumps(c) for c in convs]
        self.seen.extend(texts)
        return [self._answer(t, p, i) for i, (t, p) in enumerate(zip(texts, params))]

    def generate(
        self, prompts: Any, sampling_params: Any = None, use_tqdm: bool = True, **kw: Any
    ) -> list[RequestOutput]:
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        params = (
            sampling_params
            if isinstance(sampling_params, list)
            else [sampling_params] * len(prompts)
        )
        self.calls.append(("generate", len(prompts)))
        self.seen.extend(prompts)
        return [self._answer(t, p, i) for i, (t, p) in enumerate(zip(prompts, params))]


def make_fake_vllm() -> types.ModuleType:
    mod = types.ModuleType("vllm")
    mod.LLM = LLM  # type: ignore[attr-defined]
    mod.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    mod.__version__ = "0.0.0-fake"  # type: ignore[attr-defined]
    LLM.instances = []
    return mod
