"""`augpe.run(config)`: the one door, and the composition root. It reads the data, opens the run's
privacy session, builds the components (one factory each), runs the loop and writes the outputs.
The run folder's format belongs to `augpe.runner.layout`; the guarantee to `augpe.privacy`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from augpe.atomic import write_json, write_jsonl
from augpe.config import Config, PEConfig
from augpe.embed import Embedder, PrivateEmbeddings, embed_private
from augpe.llm.base import LLM
from augpe.pe.apis import TextAPIs
from augpe.pe.loop import evolve
from augpe.pe.output import make_output
from augpe.pe.prompts import PromptSet, load_prompt_set
from augpe.pe.select import class_sizes, min_votes_for
from augpe.privacy.centroids import centroid_labels
from augpe.privacy.ledger import Ledger
from augpe.privacy.mechanism import RunSecret
from augpe.privacy.plan import PrivacySettings, planned_releases
from augpe.privacy.session import (
    ReleasePlan,
    VoteReleases,
    open_mechanism,
    plan_releases,
    release_centroids,
)
from augpe.records.data import PrivateData, load_private_data, load_public_seed
from augpe.records.sample import corpus_record
from augpe.runner.checks import check_run, resolved_config
from augpe.runner.components import (
    build_components,
    build_embedder,
    build_llm,
    build_vote,
    build_writers,
    check_llm,
    overlap_private,
)
from augpe.runner.layout import RunLayout
from augpe.runner.store import RunStore
from augpe.runner.summary import (
    RunResult,
    RunSummary,
    resume_spend,
    save_spend,
    timings_of,
    total_spend,
)
from augpe.timing import Timer

log = logging.getLogger("augpe")

__all__ = ["RunResult", "run"]


def run(
    cfg: Config,
    resume: bool = False,
    show_progress: bool = True,
    llm: LLM | None = None,
    embedder: Embedder | None = None,
) -> RunResult:
    """Turn the private dataset of `cfg` into a DP synthetic corpus (see augpe.runner.layout).

    One run at a time per run folder: a second run on the same output.dir fails at once."""
    with RunLayout.of(cfg).lock():
        return _run(cfg, resume, show_progress, llm, embedder)


def _run(
    cfg: Config, resume: bool, show_progress: bool, llm: LLM | None, embedder: Embedder | None
) -> RunResult:
    timer = Timer()
    # 1. The privacy plan (delta and every sigma) from the config alone, before any data is read.
    prompts = load_prompt_set(cfg.generation.prompts)
    cfg = resolved_config(cfg, prompts)
    settings = PrivacySettings.from_config(cfg)
    planned = planned_releases(settings)
    log.info(
        "privacy: eps=%g delta=%.3g (%s) T=%d -> sigma_t=%s",
        cfg.privacy.epsilon,
        planned.delta,
        planned.delta_rule,
        cfg.pe.iterations,
        ", ".join(f"{v.sigma:.4f}" for v in planned.votes),
    )
    # 2. Validate everything cheap before touching models or disk.
    data = load_private_data(cfg.data)
    public = load_public_seed(cfg.data, data.class_names)  # [] unless data.public_seed is set
    check_run(cfg, data, prompts, public, planned.delta)
    if llm is not None:
        check_llm(cfg, llm)  # an LLM passed in (a run builds the one its config describes)
    log.info(
        "private data: %d records, %d classes (%d empty texts dropped) from %s",
        len(data),
        data.num_classes,
        data.dropped_empty,
        data.source,
    )
    if math.isinf(cfg.privacy.epsilon):
        log.warning("privacy.epsilon is inf: NO NOISE, the output is NOT differentially private")

    # 3. Run folder; privacy session: ledger, secret, the releases before the loop.
    layout = RunLayout.of(cfg)
    layout.prepare(cfg, resume, forget=_forget)
    mechanism = open_mechanism(
        settings,
        planned,
        layout.ledger,
        layout.state,
        layout.private,
        data,
        resume=resume,
        user_seed=cfg.privacy.noise_seed,
    )
    p = cfg.privacy
    plan = plan_releases(
        planned, data, mechanism, p.keywords_per_class, p.keywords_per_record, p.keyword_selection
    )
    store = RunStore(layout, [v.sigma for v in plan.votes])
    dp = VoteReleases(mechanism, plan.votes, RunLayout.votes_file)

    # 4. Components: loaded once.
    own_llm = llm is None
    with timer.stage(0, "load_models"):
        if llm is None and embedder is None:
            llm, embedder = build_components(cfg, show_progress)
        embedder = embedder or build_embedder(cfg, show_progress)
        llm = llm or build_llm(cfg, show_progress)
    spent = resume_spend(layout.spend, resume, llm)  # max_cost: over all invocations
    try:
        return _run_loaded(cfg, data, public, prompts, store, dp, plan, llm, embedder, timer, spent)
    finally:
        save_spend(layout.spend, spent, llm)
        if own_llm:
            llm.close()


def resolved_pe(cfg: Config, plan: ReleasePlan) -> PEConfig:
    """cfg.pe with min_votes filled in: twice the vote's sigma (at least one vote)."""
    if cfg.pe.min_votes is not None or not plan.votes:
        return cfg.pe
    sigma = max(v.sigma for v in plan.votes)
    return cfg.pe.model_copy(update={"min_votes": min_votes_for(sigma)})


def _run_loaded(
    cfg: Config,
    data: PrivateData,
    public: list[tuple[str, int]],
    prompts: PromptSet,
    store: RunStore,
    dp: VoteReleases,
    plan: ReleasePlan,
    llm: LLM,
    embedder: Embedder,
    timer: Timer,
    spent: dict[str, Any],
) -> RunResult:
    layout, ledger = store.layout, dp.mechanism.ledger

    def embed_all_private() -> np.ndarray:
        with timer.stage(0, "embed_private"):
            cache = layout.private_cache if cfg.embedding.cache_private else None
            return embed_private(embedder, data.texts, data.fingerprint(), cache)

    sizes = class_sizes(cfg.privacy, cfg.pe.samples, data.class_names, plan.noisy_counts)
    labels = [cfg.generation.label_descriptions.get(c, c) for c in data.class_names]
    apis = TextAPIs(
        llm,
        prompts,
        cfg.generation,
        labels,
        cfg.seed,
        plan.keywords,
        public,
        plan.lengths,
        build_writers(cfg, llm, prompts, data.class_names),
    )
    # The initial population needs no private data: its generation can hide the private embedding.
    overlap = overlap_private(cfg)
    private = PrivateEmbeddings(embed_all_private, background=overlap, timer=timer)

    # 5. The method (augpe.pe.loop): generate, embed, vote, DP release, select, vary.
    pe = resolved_pe(cfg, plan)
    result = evolve(
        apis,
        private.after(embedder),  # the model is free once the private texts are done
        build_vote(cfg, data, private),
        dp,
        store,
        make_output(pe.output, pe.min_votes, data.num_classes, pe.relabel),
        sizes,
        pe,
        timer=timer,
        rng_for=lambda t: np.random.default_rng([cfg.seed, 1_000_003, t]),
    )
    if plan.centroids is not None:  # the corpus's labels: the DP class centroids (one release)
        sums = release_centroids(plan.centroids, dp.mechanism, data, private.get)
        result = result.relabelled(
            lambda s: centroid_labels(
                cfg.privacy.centroid_labels,
                embedder.encode([x.text for x in s], "embed output"),
                sums,
                sizes,  # ranked: each class's share of the corpus, as the run asked for
            )
        )
    ledger.assert_within_target()

    # 6. Outputs (atomic): the corpus, the summary (released), the timings (the operator's).
    rows = []
    for s in result.output:
        votes = result.votes.get(s.id)  # output `soft`: also the row's training weight
        weight = votes if result.weighted else None
        rows.append(corpus_record(s, data.class_names, data.class_labels, votes, weight))
    write_jsonl(layout.corpus, rows)
    spend = total_spend(spent, llm)  # over every invocation of the run
    timings = timings_of(timer, llm, overlap, cost=spend["cost"])
    write_json(layout.timings, timings)
    write_jsonl(
        layout.iterations, [{"iteration": t, **r} for t, r in sorted(store.iter_log.items())]
    )
    summary = RunSummary.of(
        ledger,
        rows,
        data.class_names,
        sizes.tolist(),
        None if plan.noisy_counts is None else plan.noisy_counts.tolist(),
        plan.keywords,
        {**apis.stats.to_dict(), "model": llm.name},
        llm,
        overlap,
        None if plan.lengths is None else plan.lengths.mean_words,
        spend=spend,
    ).to_dict()
    write_json(layout.summary, summary)
    return RunResult(layout.root, layout.corpus, rows, ledger, summary, timings)


def _forget(private_dir: Path, ledger_path: Path) -> None:
    """An overwritten run can never be resumed: drop its secret from the PRIVATE folder."""
    RunSecret.forget(private_dir, Ledger.load(ledger_path).run_nonce)
