"""Algorithm 1 of Aug-PE: generate, embed, vote, DP release, select, vary.

`evolve` is the whole method on one screen. It drives components, each behind a small Protocol:
the LLM APIs (`TextAPIs`), the embedder, the clean vote (`augpe.privacy.vote`, through a closure
that holds the private embeddings), the DP step (`DPStep`: the Gaussian mechanism and its store),
the population cache (every population stored the moment it exists, so a resumed run reuses it
and the corpus equals an uninterrupted run's) and the output policy (`augpe.pe.output`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Protocol

import numpy as np

from augpe.config import PEConfig
from augpe.embed import Embedder
from augpe.pe.apis import TextAPIs
from augpe.pe.output import OutputPolicy, PEResult, Voted
from augpe.pe.select import select_parents
from augpe.records.sample import Sample, class_array
from augpe.timing import Timer

CleanVote = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(candidate embeddings, their voter classes) -> the CLEAN vote histogram (private)."""


class DPStep(Protocol):
    """The DP step: vote t's clean histogram released with N(0, sigma_t^2), booked in the ledger
    before it is drawn, drawn once per run (a resume gets the stored release back)."""

    def release(
        self, t: int, candidates: list[Sample], clean: Callable[[], np.ndarray]
    ) -> np.ndarray: ...


class PopulationCache(Protocol):
    """Populations (pure synthetic text), stored the moment they exist, and the iteration log."""

    def population(self, t: int, make: Callable[[], Candidates]) -> Candidates: ...

    def log_iteration(self, t: int, record: dict[str, object]) -> None: ...


@dataclass
class Candidates:
    """The candidates voted on in one iteration; `lookahead[i]` are candidate i's variations."""

    samples: list[Sample]
    lookahead: list[list[Sample]] = field(default_factory=list)


def evolve(
    apis: TextAPIs,
    embed: Embedder,
    vote: CleanVote,
    dp: DPStep,
    cache: PopulationCache,
    output: OutputPolicy,
    sizes: np.ndarray,
    settings: PEConfig,
    *,
    timer: Timer,
    rng_for: Callable[[int], np.random.Generator],
) -> PEResult:
    """T iterations of Private Evolution; only the DP step reads the clean vote."""
    L, T = settings.variations, settings.iterations
    with timer.stage(0, "generate"):  # 1. RANDOM API
        gen = cache.population(0, lambda: initial_population(apis, sizes, L, settings.lookahead))
    for t in range(1, T + 1):
        with timer.stage(t, "embed"):  # 2. embed; near-duplicates get no vote
            emb = embed_candidates(embed, gen, settings.lookahead_include_self)
            voters = vote_classes(gen.samples, emb, settings.dedup)
        with timer.stage(t, "vote"):  # 3. vote, 4. DP release: + N(0, sigma_t^2)
            noisy = dp.release(t, gen.samples, partial(vote, emb, voters))
            cast = Voted(gen.samples, noisy, voters)
            if settings.relabel:  # cross-class vote: a candidate takes its voters' noisy label
                gen, noisy, voters = relabel(gen, noisy, voters)
        with timer.stage(t, "select"):  # 5. select parents from the noisy votes
            parents = select_per_class(gen.samples, noisy, sizes, settings, rng_for(t), voters)
        output.observe(cast, Voted(gen.samples, noisy, voters), parents)
        cache.log_iteration(t, iteration_record(cast, parents))
        if t < T:
            with timer.stage(t, "generate"):  # 6. VARIATION API on the parents
                gen = cache.population(
                    t, partial(next_population, apis, gen, parents, L, settings, t, noisy)
                )
    return output.result()


# ---- the steps ------------------------------------------------------------------------------
def iteration_record(cast: Voted, parents: list[int]) -> dict[str, object]:
    """The iteration log's line: noisy (DP-safe) summaries only."""
    return {
        "noisy_votes_max": round(float(cast.noisy.max(initial=0.0)), 3),
        "noisy_votes_sum": round(float(cast.noisy.sum()), 3),
        "population": len(cast.samples),
        "parents": len(parents),
    }


def initial_population(apis: TextAPIs, sizes: np.ndarray, L: int, lookahead: int) -> Candidates:
    """RANDOM API: sizes[c] samples per class, then L-1 variations of each (PE step 1)."""
    seeds = apis.random([c for c, n in enumerate(sizes) for _ in range(int(n))], iteration=0)
    samples = seeds + apis.vary(seeds, L - 1, iteration=0) if L > 1 else seeds
    return with_lookahead(apis, samples, lookahead, iteration=0)


def with_lookahead(apis: TextAPIs, samples: list[Sample], d: int, iteration: int) -> Candidates:
    if d == 0:
        return Candidates(samples)
    kids = apis.vary(samples, d, iteration=iteration, stream=1)
    by_parent: dict[str, list[Sample]] = {}
    for k in kids:
        by_parent.setdefault(k.parent_id or "", []).append(k)
    return Candidates(samples, [by_parent.get(s.id, []) for s in samples])


def embed_candidates(embed: Embedder, gen: Candidates, include_self: bool) -> np.ndarray:
    """A candidate's voting embedding: its own, or the mean over its lookahead variations."""
    own = embed.encode([s.text for s in gen.samples], desc="embed synthetic")
    if not gen.lookahead:
        return own
    flat = [k.text for kids in gen.lookahead for k in kids]
    kid_emb = embed.encode(flat, desc="embed lookahead")
    out, pos = np.empty_like(own), 0
    for i, kids in enumerate(gen.lookahead):
        rows = [kid_emb[pos : pos + len(kids)]] + (
            [own[i : i + 1]] if include_self or not kids else []
        )
        out[i] = np.concatenate(rows).mean(axis=0)
        pos += len(kids)
    return out


def vote_classes(samples: list[Sample], emb: np.ndarray, dedup: float) -> np.ndarray:
    """Each candidate's class for the vote, -1 for a near-duplicate of an earlier one.

    Near-duplicates (cosine > `dedup` to an earlier candidate of the same class) would split the
    votes of one region between copies; with class -1 no record votes for them, and they are
    neither selected nor output. Reads only synthetic embeddings: no privacy cost.
    """
    classes = class_array(samples)
    if not dedup or len(samples) < 2:
        return classes
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    out = classes.copy()
    for c in np.unique(classes):
        idx = np.flatnonzero(classes == c)
        sim = unit[idx] @ unit[idx].T
        np.fill_diagonal(sim, -1.0)
        kept: list[int] = []
        for j in range(idx.size):
            if kept and sim[j, kept].max() > dedup:
                out[idx[j]] = -1
            else:
                kept.append(j)
    return out


def relabel(
    gen: Candidates, noisy: np.ndarray, voters: np.ndarray
) -> tuple[Candidates, np.ndarray, np.ndarray]:
    """Post-processing of the cross-class vote's noisy (candidate, voter class) histogram.

    Each candidate that could be voted for takes the class with the most noisy votes, and is
    ranked by that count; its lookahead variations follow it. A text the LLM wrote for one label
    but that sits among private records of another becomes an example of that other label, so the
    corpus's labels follow the private class boundary rather than the prompt's.
    """
    n = len(gen.samples)
    table = noisy.reshape(n, -1)
    best = table.argmax(axis=1)
    labels = np.where(voters >= 0, best, class_array(gen.samples))
    score = table[np.arange(n), best]

    def moved(s: Sample, c: int) -> Sample:
        return s if s.class_id == c else replace(s, class_id=c)

    samples = [moved(s, int(c)) for s, c in zip(gen.samples, labels, strict=True)]
    kids = [[moved(k, int(c)) for k in ks] for ks, c in zip(gen.lookahead, labels, strict=False)]
    return Candidates(samples, kids), score, np.where(voters >= 0, labels, -1)


def select_per_class(
    samples: list[Sample],
    noisy: np.ndarray,
    sizes: np.ndarray,
    cfg: PEConfig,
    rng: np.random.Generator,
    voters: np.ndarray | None = None,
) -> list[int]:
    """Indices (into samples) of the next parents: sizes[c] per class, from noisy counts only
    (among the candidates that could be voted for: not the near-duplicates)."""
    classes = class_array(samples) if voters is None else voters
    chosen: list[int] = []
    for c, n in enumerate(sizes):
        idx = np.flatnonzero(classes == c)
        picked = select_parents(noisy[idx], int(n), cfg.selection, cfg.threshold, rng)
        chosen.extend(idx[picked].tolist())
    return chosen


def best_voted(
    samples: list[Sample], noisy: np.ndarray, parents: list[int], n: int
) -> dict[int, list[Sample]]:
    """Per class, its `n` parents with the most noisy votes, best first (post-processing)."""
    out: dict[int, list[Sample]] = {}
    for i in sorted(dict.fromkeys(parents), key=lambda i: (-float(noisy[i]), i)):
        group = out.setdefault(samples[i].class_id, [])
        if len(group) < n:
            group.append(samples[i])
    return out


def next_population(
    apis: TextAPIs,
    gen: Candidates,
    parents: list[int],
    L: int,
    cfg: PEConfig,
    t: int,
    noisy: np.ndarray | None = None,
) -> Candidates:
    """VARIATION API on the parents; lookahead variations are reused as children (no re-generation).
    With `pe.in_context`, each class's best-voted parents (`noisy`) are shown in its requests."""
    if cfg.in_context and noisy is not None:
        examples = best_voted(gen.samples, noisy, parents, cfg.in_context + 1)
        apis.show_examples(examples, cfg.in_context)
    n_kids = L - 1 if cfg.keep_parents else L
    kids: list[Sample] = []
    extra: dict[int, list[Sample]] = {}  # children still to generate -> parents needing that many
    used: set[int] = set()
    for i in parents:  # under "prob" a parent may repeat: its lookahead pool serves it only once
        pool = gen.lookahead[i] if gen.lookahead and i not in used else []
        used.add(i)
        kids.extend(pool[:n_kids])
        if n_kids > len(pool):
            extra.setdefault(n_kids - len(pool), []).append(gen.samples[i])
    for stream, (n, group) in enumerate(sorted(extra.items()), start=2):
        kids.extend(apis.vary(group, n, iteration=t, stream=stream))
    keep = [gen.samples[i] for i in dict.fromkeys(parents)] if cfg.keep_parents else []
    return with_lookahead(apis, keep + kids, cfg.lookahead, iteration=t)
