"""The `generation` section: the LLM backend, how it is prompted, and the mixture of backends."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from augpe.config.sections import _Section


class LengthConfig(_Section):
    """Adaptive length of variations: target = parent words + round(N(0, std)), floored."""

    std_words: float = Field(5.0, ge=0.0)
    min_words: int = Field(25, ge=1)
    token_per_word: float = Field(1.6, gt=0.0)
    max_tokens: int = Field(160, ge=8)
    random_words: int = Field(50, ge=1, description="target length of random-API samples")


class GenerationConfig(_Section):
    """The LLM backend and how it is prompted."""

    backend: Literal["embedded", "openai", "vllm", "transformers"] = "embedded"
    model: str | None = Field(None, description="model name or path; None = the backend's default")
    prompts: str = Field("generic", description="prompt set name under prompts/ or a YAML path")
    label_descriptions: dict[str, str] = Field(
        default_factory=dict,
        description="how each class reads in a prompt, e.g. {'great': 'a 5-star'}",
    )
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    variation: Literal["rephrase", "fill_blanks", "mixed"] = "rephrase"
    mask_schedule: list[float] = Field(
        default_factory=lambda: [0.6, 0.6, 0.55, 0.55, 0.5],
        description="fill-in-the-blanks p per iteration",
    )
    max_retries: int = Field(
        2, ge=0, description="retries (new seed) for empty or malformed generations"
    )
    tidy: bool = Field(
        False,
        description="cut an echoed class description and an unfinished last sentence from each "
        "generation (counted in summary.json generation.tidied)",
    )
    length: LengthConfig = Field(default_factory=LengthConfig)
    # embedded backend
    n_parallel: int = Field(16, ge=1, description="decoding slots (continuous batching)")
    deterministic: bool = Field(
        True,
        description="embedded: decode one request at a time so the same config and seed give the "
        "same corpus (batched llama.cpp numerics depend on batch shape); false = n_parallel slots, "
        "about 2x the throughput, samples may differ between runs",
    )
    n_ctx_per_slot: int = Field(768, ge=128)
    threads: int | None = Field(None, ge=1, description="CPU threads; None = all cores")
    # remote / GPU backends
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(16, ge=1)
    tensor_parallel_size: int = Field(1, ge=1)
    dtype: str = "auto"
    device: str | None = None
    # openai backend (any OpenAI-compatible server). The key itself never enters the config:
    # only the name of the variable or the file that holds it, so config.yaml is safe to release.
    api: Literal["chat", "completions"] = Field(
        "chat", description="chat: /chat/completions; completions: /completions (base models)"
    )
    api_key_file: str | None = Field(
        None, description="file holding only the API key (instead of the api_key_env variable)"
    )
    timeout: float = Field(60.0, gt=0.0, description="seconds per HTTP request before a retry")
    request_retries: int = Field(
        6, ge=0, description="retries of one request on 429 / 5xx / timeouts / dropped connections"
    )
    retry_backoff: float = Field(
        1.0, gt=0.0, description="first backoff in seconds; doubles, jittered"
    )
    retry_backoff_max: float = Field(
        60.0, gt=0.0, description="longest backoff (Retry-After may ask more)"
    )
    preflight: bool = Field(
        True, description="one 1-token request at start-up: a bad key or model fails before the run"
    )
    send_seed: bool = Field(
        True, description="send each request's seed (turn off if a server rejects it)"
    )
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = Field(
        "max_tokens",
        description="OpenAI reasoning models (o-series, gpt-5) want max_completion_tokens",
    )
    # transformers / vllm backends
    batch_size: int = Field(16, ge=1, description="transformers: prompts decoded together")
    gpu_memory_utilization: float = Field(
        0.9, gt=0.0, le=1.0, description="vllm: share of GPU memory"
    )
    max_model_len: int | None = Field(
        None, ge=16, description="vllm: context length (None = model's)"
    )
    # cost accounting (hosted APIs); local backends cost 0 unless priced here
    price_per_1k_input: float = Field(
        0.0, ge=0.0, description="currency units per 1000 prompt tokens"
    )
    price_per_1k_output: float = Field(0.0, ge=0.0, description="per 1000 completion tokens")
    max_cost: float | None = Field(
        None, gt=0.0, description="stop (BudgetExceeded) before a batch that could cross this spend"
    )
    # persistent request cache (prompts and completions are synthetic text only)
    cache: bool = Field(
        True, description="reuse completions of identical seeded requests across runs"
    )
    cache_path: str | None = Field(
        None, description="SQLite file; default <output.dir>/../.augpe-cache/requests.sqlite"
    )
    # several models in one run
    mixture: list[dict[str, Any]] = Field(
        default_factory=list,
        description="weighted backends, e.g. [{backend: openai, model: gpt-4o-mini, weight: 3}, "
        "{backend: embedded, weight: 1}]; each request goes to one, chosen from its seed",
    )

    @model_validator(mode="after")
    def _check_mixture(self) -> GenerationConfig:
        for i, _ in enumerate(self.mixture):
            self.mixture_member(i)  # raises with the entry named
        return self

    def mixture_member(self, i: int) -> tuple[GenerationConfig, float]:
        """Entry `i` of `mixture` as a full config (unset keys inherit this one) and its weight.

        Run-wide settings (prompts, sampling, lengths, cache, max_cost) cannot differ per member:
        the PE loop asks every backend the same requests and the budget is one for the run.
        """
        entry = dict(self.mixture[i])
        where = f"mixture[{i}]"
        weight = entry.pop("weight", None)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            raise ValueError(f"{where}: needs a 'weight' > 0 (got {weight!r})")
        run_wide = {
            "prompts",
            "label_descriptions",
            "temperature",
            "top_p",
            "variation",
            "mask_schedule",
            "max_retries",
            "tidy",
            "length",
            "mixture",
            "cache",
            "cache_path",
            "max_cost",
        }
        for key in entry:
            if key in run_wide:
                raise ValueError(f"{where}: '{key}' is a run-wide setting; set it on generation")
            if key not in GenerationConfig.model_fields:
                raise ValueError(f"{where}: unknown key '{key}'")
        base = self.model_dump(exclude={"mixture"})
        try:
            member = GenerationConfig.model_validate({**base, **entry})
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{where}.{loc}: {first['msg']}") from None
        return member, float(weight)
