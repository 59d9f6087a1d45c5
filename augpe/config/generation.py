"""The `generation` section: the LLM backend, how it is prompted, and the mixture of backends.

One typed model per backend (`BACKEND_CONFIGS`), chosen by `generation.backend`: each takes the
shared settings (`GenerationBase`) and its own, and a setting of another backend is an error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)

from augpe.config.sections import _Section


class LengthConfig(_Section):
    """Adaptive length of variations: target = parent words + round(N(0, std)), floored."""

    std_words: float = Field(5.0, ge=0.0, description="spread of a variation's target length")
    min_words: int = Field(25, ge=1, description="no target length below this many words")
    token_per_word: float = Field(1.6, gt=0.0, description="tokens per word, to size max_tokens")
    max_tokens: int = Field(160, ge=8, description="completion tokens per request, at most")
    random_words: int = Field(50, ge=1, description="target length of random-API samples")


class GenerationBase(_Section):
    """Settings every backend shares: the model, how it is prompted, lengths, cost and cache."""

    backend: str = Field(
        "embedded", description="which LLM writes the text: embedded | openai | vllm | transformers"
    )
    model: str | None = Field(None, description="model name or path; None = the backend's default")
    prompts: str = Field(
        "generic",
        description="prompt set name under prompts/ or a YAML path. generic: a text on the class "
        "description; generic_v2: one realistic example of the class, with its DP keywords "
        "(privacy.keywords auto), which wins on many small topics and loses on sentiment",
    )
    label_descriptions: dict[str, str] = Field(
        default_factory=dict,
        description="how each class reads in a prompt, e.g. {'great': 'a 5-star'}",
    )
    temperature: float = Field(1.0, ge=0.0, description="sampling temperature")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="nucleus sampling: top-p")
    variation: Literal["rephrase", "fill_blanks", "mixed"] = Field(
        "rephrase", description="the VARIATION API: rephrase, fill in the blanks, or both mixed"
    )
    mask_schedule: list[float] = Field(
        default_factory=lambda: [0.6, 0.6, 0.55, 0.55, 0.5],
        description="fill-in-the-blanks p per iteration",
    )
    max_retries: int = Field(
        2, ge=0, description="retries (new seed) for empty or malformed generations"
    )
    tidy: bool = Field(
        False,
        description="cut HTML tags, an echoed class description and an unfinished last sentence "
        "from each generation (counted in summary.json generation.tidied)",
    )
    length: LengthConfig = Field(
        default_factory=LengthConfig, description="target lengths of the generated texts"
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
    mixture: list[MixtureMember] = Field(
        default_factory=list,
        description="weighted backends, e.g. [{backend: openai, model: gpt-4o-mini, weight: 3}, "
        "{backend: embedded, weight: 1}]; each request goes to one, chosen from its seed; each "
        "entry takes the settings of its own backend, and may name its own prompt set and "
        "label_descriptions (an instruct model and a base model each need theirs)",
    )
    mixture_routing: Literal["request", "lineage"] = Field(
        "request",
        description="which mixture member writes a text: request: each request drawn by weight; "
        "lineage: the RANDOM API draws by weight, and each variation is written by the member "
        "that wrote its parent, so a member's share of later iterations follows the noisy votes "
        "its texts won (post-processing); local engine only",
    )

    @model_validator(mode="before")
    @classmethod
    def _own_keys_only(cls, data: Any) -> Any:
        """A setting of another backend is an error naming the backend it belongs to."""
        if not isinstance(data, dict):
            return data
        backend = data.get("backend", "embedded")
        for key in data:
            if key in cls.model_fields:
                continue
            owners = [b for b, m in BACKEND_CONFIGS.items() if key in m.model_fields]
            if owners:
                raise ValueError(
                    f"'{key}' is a setting of the {' / '.join(owners)} backend, not of "
                    f"backend '{backend}'; remove it (or set generation.backend)"
                )
        return data

    @field_validator("mixture", mode="before")
    @classmethod
    def _mixture_keys(cls, v: Any) -> Any:
        """Each entry's keys, checked before it is typed: a message that names the entry."""
        if not isinstance(v, list):
            return v
        for i, entry in enumerate(v):
            if not isinstance(entry, dict):
                continue  # a member model already (or not a mapping: the typed check says so)
            where = f"mixture[{i}]"
            weight = entry.get("weight")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
                raise ValueError(f"{where}: needs a 'weight' > 0 (got {weight!r})")
            for key in entry:
                if key in RUN_WIDE:
                    raise ValueError(
                        f"{where}: '{key}' is a run-wide setting; set it on generation"
                    )
                if key != "weight" and not any(
                    key in m.model_fields for m in BACKEND_CONFIGS.values()
                ):
                    raise ValueError(f"{where}: unknown key '{key}'")
            backend = entry.get("backend", "embedded")
            if backend not in BACKEND_CONFIGS:
                raise ValueError(
                    f"{where}.backend: must be one of {', '.join(BACKEND_CONFIGS)} (got {backend!r})"
                )
            foreign = [k for k in entry if k not in MIXTURE_MEMBERS[backend].model_fields]
            if foreign:
                raise ValueError(
                    f"{where}: '{foreign[0]}' is not a setting of the {backend} backend"
                )
        return v

    @model_validator(mode="after")
    def _check_mixture(self) -> GenerationBase:
        if self.mixture_routing == "lineage" and not self.mixture:
            raise ValueError("mixture_routing: lineage needs a generation.mixture")
        for i, _ in enumerate(self.mixture):
            self.mixture_member(i)  # raises with the entry named
        return self

    def mixture_member(self, i: int) -> tuple[GenerationConfig, float]:
        """Entry `i` of `mixture` as a full config and its weight. Unset keys inherit this config:
        the shared ones always, its backend's own ones when the entry has the same backend.

        Run-wide settings (sampling, lengths, cache, max_cost) cannot differ per member: the
        budget is one for the run. A member may name its own prompt set and class descriptions.
        """
        member = self.mixture[i]
        where = f"mixture[{i}]"
        entry = member.model_dump(exclude_none=True, exclude={"weight"})
        backend = member.backend
        inherit = (
            GenerationBase.model_fields if backend != self.backend else type(self).model_fields
        )
        exclude = {"mixture", "mixture_routing"}
        base = {k: v for k, v in self.model_dump(exclude=exclude).items() if k in inherit}
        try:
            full = GENERATION.validate_python({**base, "backend": backend, **entry})
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"][1:]) or "backend"  # [0]: the union's tag
            msg = first["msg"].removeprefix("Value error, ")
            raise ValueError(f"{where}.{loc}: {msg}") from None
        return full, float(member.weight)


RUN_WIDE = frozenset(
    {"temperature", "top_p", "variation", "mask_schedule", "max_retries", "tidy", "length"}
    | {"mixture", "mixture_routing", "cache", "cache_path", "max_cost"}
)
"""Settings of the whole run: a mixture member cannot set them."""


class EmbeddedGeneration(GenerationBase):
    """The offline default: SmolLM2-135M-Instruct (GGUF from PyPI) run by xllamacpp on the CPU.
    `model` also takes `gemma3-270m` (Gemma 3 270M base, PyPI extra `augpe[gemma]`) or a path
    to any GGUF file."""

    backend: Literal["embedded"] = "embedded"
    api: Literal["auto", "chat", "completions"] = Field(
        "auto",
        description="chat: the model's chat template; completions: the prompt as plain text "
        "(base models; use a prompt set for them, e.g. generic_base); auto: the named model's "
        "own (gemma3-270m: completions), chat otherwise",
    )
    n_parallel: int = Field(16, ge=1, description="decoding slots (continuous batching)")
    deterministic: bool = Field(
        True,
        description="decode one request at a time so the same config and seed give the "
        "same corpus (batched llama.cpp numerics depend on batch shape); false = n_parallel slots, "
        "about 2x the throughput, samples may differ between runs",
    )
    n_ctx_per_slot: int = Field(768, ge=128, description="context tokens per decoding slot")
    threads: int | None = Field(None, ge=1, description="CPU threads; None = all cores")


class OpenAIGeneration(GenerationBase):
    """OpenAI or any OpenAI-compatible server (vLLM, llama.cpp, Ollama, Azure, ...). The key never
    enters the config: only the name of the variable or the file that holds it."""

    backend: Literal["openai"] = "openai"
    base_url: str | None = Field(None, description="the server's /v1 URL; None = OpenAI's")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable with the key")
    api_key_file: str | None = Field(
        None, description="file holding only the API key (instead of the api_key_env variable)"
    )
    api: Literal["chat", "completions"] = Field(
        "chat", description="chat: /chat/completions; completions: /completions (base models)"
    )
    concurrency: int = Field(16, ge=1, description="requests in flight at once")
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


class VLLMGeneration(GenerationBase):
    """vLLM in this process, on GPUs."""

    backend: Literal["vllm"] = "vllm"
    api: Literal["chat", "completions"] = Field(
        "chat", description="chat: the model's chat template; completions: raw prompts"
    )
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one model is split over")
    dtype: str = Field("auto", description="weights dtype (auto, bfloat16, float16, ...)")
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0, description="share of GPU memory")
    max_model_len: int | None = Field(
        None, ge=16, description="context length (None = the model's)"
    )


class TransformersGeneration(GenerationBase):
    """Hugging Face transformers in this process (CPU or GPU): any local causal LM."""

    backend: Literal["transformers"] = "transformers"
    batch_size: int = Field(16, ge=1, description="prompts decoded together")
    dtype: str = Field("auto", description="weights dtype (auto, bfloat16, float16, float32)")
    device: str | None = Field(None, description="cpu, cuda, cuda:1, ...; None = a GPU if any")


BACKEND_CONFIGS: dict[str, type[GenerationBase]] = {
    "embedded": EmbeddedGeneration,
    "openai": OpenAIGeneration,
    "vllm": VLLMGeneration,
    "transformers": TransformersGeneration,
}
"""generation.backend -> the settings it takes (the registry of backend configs)."""


def _backend_of(v: Any) -> str:
    """The `backend` tag of a generation section or mixture entry (default embedded)."""
    return str(v.get("backend", "embedded") if isinstance(v, dict) else getattr(v, "backend", ""))


class _Member(_Section):
    """A mixture entry: a setting left unset (None) inherits generation's, and is not written."""

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


def _member_model(backend: str, model: type[GenerationBase]) -> type[_Member]:
    """One mixture entry of `backend`: its settings that may differ per member, each unset by
    default (it inherits generation's), and the member's weight."""
    fields: dict[str, Any] = {
        "backend": (Literal[backend], Field(backend, description="this member's backend")),  # type: ignore[valid-type]
        "weight": (float, Field(gt=0.0, description="share of the requests, relative")),
    }
    for name, f in model.model_fields.items():
        if name in RUN_WIDE or name == "backend":
            continue
        fields[name] = (Union[f.annotation, None], Field(None, description=f.description))  # noqa: UP007
    doc = (
        f"A `generation.mixture` entry with backend {backend}: unset settings inherit generation's."
    )
    return create_model(  # type: ignore[no-any-return,call-overload]
        f"{model.__name__}Member", __base__=_Member, __doc__=doc, **fields
    )


MIXTURE_MEMBERS: dict[str, type[_Member]] = {
    b: _member_model(b, m) for b, m in BACKEND_CONFIGS.items()
}
"""generation.backend -> the typed mixture entry of that backend."""

MixtureMember: Any = Annotated[
    Union[tuple(Annotated[m, Tag(b)] for b, m in MIXTURE_MEMBERS.items())],  # noqa: UP007
    Discriminator(_backend_of),
]
"""One `generation.mixture` entry: typed per backend (default embedded), with its weight."""
_MODELS: list[type[GenerationBase]] = [GenerationBase, *BACKEND_CONFIGS.values()]
for _model in _MODELS:
    _model.model_rebuild()


GenerationConfig = Annotated[
    Annotated[EmbeddedGeneration, Tag("embedded")]
    | Annotated[OpenAIGeneration, Tag("openai")]
    | Annotated[VLLMGeneration, Tag("vllm")]
    | Annotated[TransformersGeneration, Tag("transformers")],
    Discriminator(
        _backend_of,
        custom_error_type="backend",
        custom_error_message="generation.backend must be one of embedded, openai, vllm, "
        "transformers",
    ),
]
"""The `generation` section: one typed model per backend, chosen by `backend` (default embedded)."""

GENERATION: TypeAdapter[GenerationConfig] = TypeAdapter(GenerationConfig)


def generation_config(**settings: Any) -> GenerationConfig:
    """The `generation` section from keyword settings (validated; `backend` picks the model)."""
    return GENERATION.validate_python(settings)
