"""`augpe.run(config)`: the one door. Loads data, builds components, runs `evolve`, writes the run.

Run folder (what `augpe release` may copy is the allow-list in augpe.release.verify.ARTEFACTS):
    config.yaml      resolved config (never the noise seed)
    ledger.json      run nonce, privacy settings, every DP release and its sigma; eps/mu derived
    synthetic.jsonl  the DP synthetic corpus
    iterations.jsonl per-iteration statistics (synthetic / noisy values only)
    summary.json     sizes, privacy, tokens (no timings)
    timings.json     per-stage wall time, tokens/s: for the operator, NOT released (data-dependent)
    state/           populations and noisy histograms as they are produced (resume reuses them)
Private folder (`<run>.PRIVATE` by default; never released): private-embedding cache, and under
runs/<nonce>.json each run's noise seed (see augpe.privacy.mechanism).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from augpe.pe.apis import KEYWORD_SLOTS, TextAPIs
from augpe.config import Config
from augpe.records.data import PrivateData, load_private_data
from augpe.embed import Embedder, PrivateEmbeddings, SentenceTransformerEmbedder, embed_private
from augpe.errors import ConfigError
from augpe.pe.loop import Candidates, evolve
from augpe.llm import make_llm
from augpe.llm.base import LLM
from augpe.llm.cache import resolve_cache_path, wrap_with_cache
from augpe.llm.cost import cost_report
from augpe.records.sample import Sample, corpus_record
from augpe.privacy import (
    GaussianMechanism,
    GaussianRelease,
    Ledger,
    Neighbouring,
    PrivacySettings,
    RunSecret,
    first_release,
    keyword_release,
    resolve_delta,
    vote_releases,
)
from augpe.privacy.keywords import keyword_histogram, public_vocabulary, select_keywords
from augpe.pe.prompts import PromptSet, load_prompt_set, template_fields
from augpe.pe.select import allocate
from augpe.runner.timing import Timer
from augpe.vote import class_histogram, unit_count, vote_histogram

log = logging.getLogger("augpe")

CORPUS = "synthetic.jsonl"
LEDGER = "ledger.json"


# ---- atomic files ----------------------------------------------------------------------------
def write_atomic(path: Path, text: str) -> None:
    """Write-then-rename: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


# ---- the run state (implements evolve.RunState) ---------------------------------------------
class RunStore:
    """DP-safe intermediate results, stored as they are produced so that a resume reuses them."""

    def __init__(
        self, root: Path, mechanism: GaussianMechanism, votes: list[GaussianRelease]
    ) -> None:
        self.root = root
        self.state = root / "state"
        self.state.mkdir(parents=True, exist_ok=True)
        self.mechanism = mechanism
        self.votes = votes  # the planned release of vote t is votes[t - 1]
        self.iter_log: dict[int, dict[str, object]] = {}

    def population(self, t: int, make: Callable[[], Candidates]) -> Candidates:
        path = self.state / f"population_{t:02d}.json"
        if path.is_file():
            raw = json.loads(path.read_text(encoding="utf-8"))
            return Candidates(
                [Sample.from_dict(d) for d in raw["samples"]],
                [[Sample.from_dict(d) for d in kids] for kids in raw["lookahead"]],
            )
        gen = make()
        write_json(
            path,
            {
                "samples": [s.to_dict() for s in gen.samples],
                "lookahead": [[k.to_dict() for k in kids] for kids in gen.lookahead],
            },
        )
        return gen

    def noisy_votes(
        self, t: int, population: list[Sample], votes: Callable[[], np.ndarray]
    ) -> np.ndarray:
        """The DP release of iteration t, through the mechanism (booked, drawn once, stored)."""
        event = self.votes[t - 1]
        noisy = self.mechanism.release(
            event, votes, file=f"votes_{t:02d}.json", tag=[s.id for s in population]
        )
        self.iter_log.setdefault(t, {}).update(  # noisy, hence DP-safe, summaries
            {
                "sigma": event.sigma,
                "noisy_votes_max": round(float(noisy.max(initial=0.0)), 3),
                "noisy_votes_sum": round(float(noisy.sum()), 3),
            }
        )
        return noisy

    def log_iteration(self, t: int, record: dict[str, object]) -> None:
        self.iter_log.setdefault(t, {}).update(record)


# ---- building blocks -------------------------------------------------------------------------
@dataclass
class RunResult:
    run_dir: Path
    corpus_path: Path
    samples: list[dict[str, Any]]
    ledger: Ledger
    summary: dict[str, Any]
    timings: dict[str, Any]  # for the operator: data-dependent, never released


def _private_dir(cfg: Config) -> Path:
    return (
        Path(cfg.output.private_dir)
        if cfg.output.private_dir
        else Path(cfg.output.dir + ".PRIVATE")
    )


def _prepare_run_dir(cfg: Config, resume: bool) -> Path:
    root = Path(cfg.output.dir)
    if resume:
        if not (root / "config.yaml").is_file():
            raise ConfigError(f"--resume: {root} is not an augpe run folder (no config.yaml)")
        return root
    if root.exists() and any(root.iterdir()):
        if not cfg.output.overwrite:
            raise ConfigError(
                f"output.dir: {root} already holds a run; use --resume to continue it, "
                "or set output.overwrite: true (or pick another folder)"
            )
        old = root / LEDGER
        if old.is_file():  # the overwritten run can never be resumed: drop its secret
            RunSecret.forget(_private_dir(cfg), Ledger.load(old).run_nonce)
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    return root


def _fmt_sigmas(sigmas: list[float]) -> str:
    return (
        f"{sigmas[0]:.4f}"
        if len(set(sigmas)) == 1
        else "[" + ", ".join(f"{s:.3f}" for s in sigmas) + "]"
    )


def released_config(cfg: Config) -> dict[str, Any]:
    """The config as the run folder keeps it: everything but the noise seed, which lives only in
    the PRIVATE folder (the ledger says whether the user set one). A resume reloads it as is."""
    d = cfg.dump()
    d["privacy"]["noise_seed"] = None
    return d


def privacy_settings(cfg: Config) -> PrivacySettings:
    return PrivacySettings(
        epsilon=cfg.privacy.epsilon,
        delta=cfg.privacy.delta,
        weights=tuple(cfg.schedule_weights()),
        class_counts=cfg.privacy.class_counts,
        count_share=cfg.privacy.class_count_share,
        neighbouring=Neighbouring.USER if cfg.data.user_column else Neighbouring.RECORD,
        max_records=cfg.data.max_records,
        keyword_share=cfg.privacy.keyword_share if cfg.privacy.keywords else None,
    )


def open_ledger(
    cfg: Config, root: Path, private_dir: Path, data: PrivateData, resume: bool
) -> tuple[Ledger, RunSecret]:
    """A fresh run's new ledger and secret, or a resumed run's own, after proving it is that run."""
    settings = privacy_settings(cfg)
    path = root / LEDGER
    if resume and path.is_file():
        ledger = Ledger.load(path)
        diff = settings.differences(ledger.settings)
        if diff:
            raise ConfigError(
                "--resume: the privacy settings differ from the stored run's ("
                + "; ".join(diff)
                + "); a resume must continue the same run: start a fresh one instead"
            )
        return ledger, RunSecret.load(private_dir, ledger.run_nonce, data.fingerprint())
    if resume:  # killed before its ledger existed: nothing was drawn, start it afresh
        log.info("--resume: %s has no ledger yet; nothing was released, starting the run", root)
    secret = RunSecret.new(private_dir, data.fingerprint(), cfg.privacy.noise_seed)
    if secret.user_seed:
        log.warning(
            "privacy.noise_seed is set: anyone who knows it can subtract the noise (tests only)"
        )
    ledger = Ledger(
        delta=settings.delta,
        target_epsilon=settings.epsilon,
        neighbouring=settings.neighbouring.value,
        delta_rule="set by the user (privacy.delta)" if settings.delta else "pending",
        run_nonce=secret.nonce,
        settings=settings.to_dict(),
        noise_seed_rule="set by the user (privacy.noise_seed): NOT secret, tests only"
        if secret.user_seed
        else "fresh OS entropy per run, kept in the PRIVATE folder",
    )
    ledger.save(path)
    return ledger, secret


@dataclass(frozen=True)
class ReleasePlan:
    """What the releases before the votes gave, and the votes planned after them."""

    delta: float
    noisy_counts: np.ndarray | None  # class counts, when class_counts is dp
    keywords: list[list[str]] | None  # per class, when privacy.keywords is on
    votes: list[GaussianRelease]


def plan_releases(cfg: Config, data: PrivateData, mechanism: GaussianMechanism) -> ReleasePlan:
    """The releases before the votes (size, keywords), then delta, then the votes' sigmas.

    The whole plan is priced before the first noise is drawn, and again once delta is known.
    """
    settings = privacy_settings(cfg)
    first, kw = first_release(settings), keyword_release(settings)
    before = [e for e in (first, kw) if e is not None]
    ledger = mechanism.ledger
    draft = vote_releases(settings, ledger.pricing_delta, before)
    ledger.assert_within_target([e for e in [*before, *draft] if not ledger.get(e.name)])
    noisy = None
    if first is not None:
        clean = (
            (lambda: class_histogram(data.class_ids, data.num_classes, data.user_ids))
            if first.kind == "class_counts"
            else (lambda: unit_count(len(data), data.user_ids))
        )
        noisy = mechanism.release(first, clean, file=f"{first.name}.json", tag=data.class_names)
    delta, rule = resolve_delta(settings, first, noisy)
    mechanism.fix_delta(delta, rule)
    keywords = None
    if kw is not None:
        vocab = public_vocabulary()
        noisy_kw = mechanism.release(
            kw,
            lambda: keyword_histogram(
                data.texts, data.class_ids, data.num_classes, vocab, data.user_ids
            ),
            file="keywords.json",
            tag={"classes": data.class_names, "vocabulary": len(vocab)},
        )
        top = cfg.privacy.keywords_per_class
        keywords = select_keywords(noisy_kw, data.num_classes, vocab, kw.sigma, top)
    votes = vote_releases(settings, delta, before)
    ledger.assert_within_target([v for v in votes if ledger.get(v.name) is None])
    counts = noisy if first is not None and first.kind == "class_counts" else None
    return ReleasePlan(delta, counts, keywords, votes)


def class_sizes(cfg: Config, data: PrivateData, noisy_counts: np.ndarray | None) -> np.ndarray:
    """Samples per class from DP counts, public fractions or a uniform split (never raw counts)."""
    mode = cfg.privacy.class_counts
    if mode == "uniform":
        return allocate(cfg.pe.samples, np.ones(data.num_classes))
    if mode == "public":
        fr = cfg.privacy.public_class_fractions or {}
        missing = [c for c in data.class_names if c not in fr]
        if missing:
            raise ConfigError(f"privacy.public_class_fractions has no entry for classes {missing}")
        return allocate(cfg.pe.samples, np.array([fr[c] for c in data.class_names]))
    assert noisy_counts is not None
    return allocate(cfg.pe.samples, noisy_counts)


def _warn_large_delta(cfg: Config, n: int) -> None:
    """A user-set delta of at least 1/N allows publishing a record outright: say so (no N)."""
    if cfg.privacy.delta is not None and cfg.privacy.delta * n >= 1.0:
        log.warning(
            "privacy.delta = %g is not below 1/N for this dataset: a mechanism that publishes a "
            "whole record at random meets such a delta; pick a smaller one (or leave it unset)",
            cfg.privacy.delta,
        )


def build_llm(cfg: Config, show_progress: bool = True) -> LLM:
    """The configured backend (or mixture) behind the persistent request cache."""
    if cfg.execution.engine == "ray":  # replicas on Ray; the cache stays here, on the driver
        from augpe.scale.ray_llm import make_ray_llm

        llm = make_ray_llm(cfg.generation, cfg.execution, show_progress=show_progress)
    else:
        llm = make_llm(cfg.generation, show_progress=show_progress)
    private = math.isfinite(cfg.privacy.epsilon)
    return wrap_with_cache(llm, resolve_cache_path(cfg.generation, cfg.output.dir, private=private))


def build_embedder(cfg: Config, show_progress: bool = True) -> Embedder:
    return SentenceTransformerEmbedder(
        cfg.embedding.model,
        cfg.embedding.device,
        cfg.embedding.batch_size,
        show_progress=show_progress,
        max_seq_length=cfg.embedding.max_seq_length,
    )


def overlap_private(cfg: Config) -> bool:
    """Whether the private embedding runs alongside the initial generation (`embedding.overlap`)."""
    if cfg.embedding.overlap != "auto":
        return cfg.embedding.overlap == "on"
    if cfg.embedding.device != "cpu":
        return True
    gen = cfg.generation
    members = [gen.mixture_member(i)[0] for i in range(len(gen.mixture))] or [gen]

    def on_cpu(g: Any) -> bool:
        if g.backend == "embedded":
            return True
        if g.backend != "transformers":
            return False  # a server (openai-compatible) or vLLM on a GPU
        if g.device is not None:
            return str(g.device) == "cpu"
        import torch

        return not torch.cuda.is_available()

    return not any(on_cpu(g) for g in members)


def build_components(cfg: Config, show_progress: bool = True) -> tuple[LLM, Embedder]:
    """Both models, loaded once per run."""
    return build_llm(cfg, show_progress), build_embedder(cfg, show_progress)


# ---- the door --------------------------------------------------------------------------------
def run(
    cfg: Config,
    resume: bool = False,
    show_progress: bool = True,
    llm: LLM | None = None,
    embedder: Embedder | None = None,
) -> RunResult:
    """Turn the private dataset of `cfg` into a DP synthetic corpus. See module docstring for outputs."""
    timer = Timer()
    # 1. Validate everything cheap before touching models or disk.
    data = load_private_data(cfg.data)
    prompts = load_prompt_set(cfg.generation.prompts)
    if cfg.pe.samples < data.num_classes:
        raise ConfigError(
            f"pe.samples={cfg.pe.samples} is smaller than the number of classes ({data.num_classes}); "
            "every class needs at least one synthetic sample"
        )
    if cfg.privacy.keywords and not any(
        set(KEYWORD_SLOTS) & set(template_fields(t)) for t in prompts.random.templates
    ):
        raise ConfigError(
            f"privacy.keywords: the prompt set '{prompts.name}' has no {{keyword}} slot in its "
            "random templates, so DP keywords would be paid for and never used"
        )
    _warn_large_delta(cfg, len(data))
    log.info(
        "private data: %d records, %d classes (%d empty texts dropped) from %s",
        len(data),
        data.num_classes,
        data.dropped_empty,
        data.source,
    )
    if math.isinf(cfg.privacy.epsilon):
        log.warning("privacy.epsilon is inf: NO NOISE, the output is NOT differentially private")

    # 2. Run folder, private folder, ledger; the size release, delta and the votes' sigmas.
    root = _prepare_run_dir(cfg, resume)
    private_dir = _private_dir(cfg)
    write_atomic(
        private_dir / "README.txt", "PRIVATE: derived from private data. Never share or release.\n"
    )
    if not resume:
        write_atomic(root / "config.yaml", yaml.safe_dump(released_config(cfg), sort_keys=False))
    ledger, secret = open_ledger(cfg, root, private_dir, data, resume)
    mechanism = GaussianMechanism(ledger, root / LEDGER, root / "state", secret)
    plan = plan_releases(cfg, data, mechanism)
    delta, votes = plan.delta, plan.votes
    first = next((e for e in ledger.events if e.kind != "vote_histogram"), None)
    log.info(
        "privacy: eps=%g delta=%.3g T=%d -> sigma_t=%s%s",
        cfg.privacy.epsilon,
        delta,
        cfg.pe.iterations,
        _fmt_sigmas([v.sigma for v in votes]),
        f", sigma={first.sigma:.4f} for {first.name}" if first else "",
    )
    store = RunStore(root, mechanism, votes)

    # 3. Components: loaded once.
    own_llm = llm is None
    with timer.stage(0, "load_models"):
        if llm is None and embedder is None:
            llm, embedder = build_components(cfg, show_progress)
        embedder = embedder or build_embedder(cfg, show_progress)
        llm = llm or build_llm(cfg, show_progress)
    try:
        return _run_loaded(cfg, data, prompts, store, private_dir, plan, llm, embedder, timer)
    finally:
        if own_llm:
            llm.close()


def _run_loaded(
    cfg: Config,
    data: PrivateData,
    prompts: PromptSet,
    store: RunStore,
    private_dir: Path,
    plan: ReleasePlan,
    llm: LLM,
    embedder: Embedder,
    timer: Timer,
) -> RunResult:
    ledger, root = store.mechanism.ledger, store.root

    def embed_all_private() -> np.ndarray:
        with timer.stage(0, "embed_private"):
            return embed_private(
                embedder,
                data.texts,
                data.fingerprint(),
                private_dir / "cache" if cfg.embedding.cache_private else None,
            )

    noisy_counts = plan.noisy_counts
    sizes = class_sizes(cfg, data, noisy_counts)
    descriptions = [cfg.generation.label_descriptions.get(c, c) for c in data.class_names]
    apis = TextAPIs(llm, prompts, cfg.generation, descriptions, cfg.seed, plan.keywords)
    # The initial population needs no private data: its generation can hide the private embedding.
    overlap = overlap_private(cfg)
    private = PrivateEmbeddings(embed_all_private, background=overlap, timer=timer)

    def vote(emb: np.ndarray, classes: np.ndarray) -> np.ndarray:
        if cfg.execution.engine == "ray":  # private shards on the cluster: the same histogram
            from augpe.scale.ray_vote import sharded_vote

            return sharded_vote(cfg, private, data).histogram(
                emb, classes, cfg.pe.k, cfg.pe.distance, cfg.pe.vote_chunk, cfg.pe.knn_device
            )
        from augpe.scale.knn import knn_device_setting

        return vote_histogram(
            private.get(),
            data.class_ids,
            emb,
            classes,
            cfg.pe.k,
            cfg.pe.distance,
            data.user_ids,
            cfg.pe.vote_chunk,
            device=knn_device_setting(cfg.pe.knn_device),
        )

    # 4. The method.
    result = evolve(
        apis,
        private.after(embedder),  # the model is free once the private texts are done
        vote,
        sizes,
        cfg.pe,
        store,
        timer,
        rng_for=lambda t: np.random.default_rng([cfg.seed, 1_000_003, t]),
    )
    ledger.assert_within_target()

    # 5. Outputs (atomic).
    rows = [
        corpus_record(s, data.class_names, data.class_labels, result.votes.get(s.id))
        for s in result.output
    ]
    corpus = root / CORPUS
    write_jsonl(corpus, rows)
    usage = llm.usage
    tokens: dict[str, Any] = {
        "requests": usage.requests,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
    }
    # Timings grow with N and the private texts' lengths: the operator's, never released.
    timings = {
        **timer.to_dict(),
        "overlap_private": overlap,
        "generation": {
            **tokens,
            "seconds": round(usage.seconds, 3),
            "tokens_per_second": round(usage.tokens_per_second, 2),
        },
    }
    write_json(root / "timings.json", timings)
    write_jsonl(
        root / "iterations.jsonl",
        [{"iteration": t, **r} for t, r in sorted(store.iter_log.items())],
    )
    per_class = {c: sum(1 for r in rows if r["class"] == c) for c in data.class_names}
    sigma_of = {e.kind: e.sigma for e in ledger.events if e.kind != "vote_histogram"}
    summary = {
        "corpus": CORPUS,
        "samples": len(rows),
        "samples_per_class": per_class,
        "target_samples_per_class": dict(zip(data.class_names, sizes.tolist())),
        "noisy_class_counts": None
        if noisy_counts is None
        else dict(zip(data.class_names, [round(float(x), 2) for x in noisy_counts])),
        "epsilon": ledger.epsilon(),
        "delta": ledger.delta,
        "delta_rule": ledger.delta_rule,
        "neighbouring": ledger.neighbouring,
        "sigma_votes": [e.sigma for e in store.votes],
        "sigma_class_counts": sigma_of.get("class_counts"),
        "sigma_record_count": sigma_of.get("record_count"),
        "iterations": cfg.pe.iterations,
        "keywords": None
        if plan.keywords is None
        else dict(zip(data.class_names, plan.keywords)),  # post-processing of the DP release
        "generation": {**apis.stats.to_dict(), **tokens, "model": llm.name},
        "cost": cost_report(llm),
        "overlap_private": overlap,
    }
    write_json(root / "summary.json", summary)
    return RunResult(root, corpus, rows, ledger, summary, timings)
