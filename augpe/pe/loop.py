"""Algorithm 1 of Aug-PE: generate, embed, vote, noise, select, vary.

`evolve` is the whole method on one screen. The components it drives (LLM APIs, embedder, vote,
noise, selection) live in their own modules; the `RunState` it writes through stores every
population and every noisy histogram the moment it exists, so a resumed run reuses them
(noise is never drawn twice) and the corpus is identical to an uninterrupted run.
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
from augpe.pe.select import select_parents
from augpe.records.sample import Sample, class_array
from augpe.timing import Timer

COPY_SEP = "~"  # output `soft`: the id of a text's copy under a second class is `<id>~<class>`


class RunState(Protocol):
    """Persistence of DP-safe intermediate results (populations, noisy histograms)."""

    def population(self, t: int, make: Callable[[], Candidates]) -> Candidates: ...

    def noisy_votes(
        self, t: int, population: list[Sample], votes: Callable[[], np.ndarray]
    ) -> np.ndarray: ...

    def log_iteration(self, t: int, record: dict[str, object]) -> None: ...


@dataclass
class Candidates:
    """The candidates voted on in one iteration; `lookahead[i]` are candidate i's variations."""

    samples: list[Sample]
    lookahead: list[list[Sample]] = field(default_factory=list)


@dataclass
class PEResult:
    output: list[Sample]
    votes: dict[str, float]  # noisy votes of each output sample at the final iteration
    weighted: bool = False  # output `soft`: each sample's noisy votes are its training weight

    @classmethod
    def of(cls, picked: dict[str, tuple[Sample, float]]) -> PEResult:
        return cls([s for s, _ in picked.values()], {k: v for k, (_, v) in picked.items()})

    @classmethod
    def soft(cls, cells: dict[str, tuple[Sample, np.ndarray]], least: float) -> PEResult:
        """Every (candidate, class) cell with at least `least` noisy votes: the text under that
        class, weighted by the cell (a soft label; the copy under a second class gets a new id)."""
        out, votes = [], {}
        for s, row in cells.values():
            for c in np.flatnonzero(row >= least).tolist():
                sid = s.id if c == s.class_id else f"{s.id}{COPY_SEP}{c}"
                out.append(replace(s, id=sid, class_id=c))
                votes[sid] = float(row[c])
        return cls(out, votes, weighted=True)

    def relabelled(self, label: Callable[[list[Sample]], np.ndarray]) -> PEResult:
        """Each distinct candidate once, under the class `label(texts)` gives it (post-processing:
        `label` reads only DP releases). A `soft` output's copies of one text under several classes
        become one row; its weight is the sum of their noisy cells (how many records sit near it)."""
        merged: dict[str, tuple[Sample, float]] = {}
        for s in self.output:
            base = s.id.split(COPY_SEP)[0]
            first, votes = merged.get(base, (replace(s, id=base), 0.0))
            merged[base] = (first, votes + self.votes.get(s.id, 0.0))
        samples = [s for s, _ in merged.values()]
        classes = label(samples) if samples else np.zeros(0, dtype=int)
        out = [replace(s, class_id=int(c)) for s, c in zip(samples, classes, strict=True)]
        return PEResult(out, {k: v for k, (_, v) in merged.items()}, self.weighted)


def evolve(
    apis: TextAPIs,
    embed: Embedder,
    vote: Callable[[np.ndarray, np.ndarray], np.ndarray],
    sizes: np.ndarray,
    cfg: PEConfig,
    state: RunState,
    timer: Timer,
    rng_for: Callable[[int], np.random.Generator],
) -> PEResult:
    """Run T DP iterations. `vote(emb, classes)` is the CLEAN histogram (private); the state
    releases it through the Gaussian mechanism (`noisy_votes`), and only that noisy release is
    read afterwards."""
    L, T = cfg.variations, cfg.iterations
    chosen: dict[str, tuple[Sample, float]] = {}  # every selected parent and its latest noisy vote
    voted: dict[str, tuple[Sample, float]] = {}  # every candidate voted on, its latest noisy vote
    cells: dict[str, tuple[Sample, np.ndarray]] = {}  # ... and its latest noisy cell per class
    with timer.stage(0, "generate"):
        gen = state.population(0, lambda: initial_population(apis, sizes, L, cfg.lookahead))
    for t in range(1, T + 1):
        with timer.stage(t, "embed"):
            emb = embed_candidates(embed, gen, cfg.lookahead_include_self)
            voters = vote_classes(gen.samples, emb, cfg.dedup)  # near-duplicates get no vote
        with timer.stage(t, "vote"):
            noisy = state.noisy_votes(t, gen.samples, partial(vote, emb, voters))  # + N(0, s_t^2)
            cells.update(vote_cells(gen.samples, noisy, voters, sizes.size, cfg.relabel))
            # cross-class vote: a candidate takes its voters' (noisy) majority label
            if cfg.relabel:
                gen, noisy, voters = relabel(gen, noisy, voters)
        with timer.stage(t, "select"):
            parents = select_per_class(gen.samples, noisy, sizes, cfg, rng_for(t), voters)
        remember(chosen, gen, noisy, parents)
        remember(voted, gen, noisy, np.flatnonzero(voters >= 0).tolist())
        state.log_iteration(t, {"population": len(gen.samples), "parents": len(parents)})
        if t == T:
            if cfg.output == "voted":  # every candidate any iteration's noisy vote vouches for
                least = cfg.min_votes or 0.0
                return PEResult.of({k: sv for k, sv in voted.items() if sv[1] >= least})
            if cfg.output == "soft":  # ... under every class whose noisy cell vouches for it
                return PEResult.soft(cells, cfg.min_votes or 0.0)
            return final_output(gen, noisy, parents, cfg.output, chosen, voters)
        with timer.stage(t, "generate"):
            gen = state.population(t, partial(next_population, apis, gen, parents, L, cfg, t))
    raise AssertionError("unreachable")


# ---- the steps ------------------------------------------------------------------------------
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


def vote_cells(
    samples: list[Sample], noisy: np.ndarray, voters: np.ndarray, n_classes: int, cross: bool
) -> dict[str, tuple[Sample, np.ndarray]]:
    """Each candidate that could be voted for and its noisy votes per voter class: the row of the
    cross-class histogram, or (per-class vote) its one count in its own class, -inf elsewhere."""
    n = len(samples)
    if cross:
        table = noisy.reshape(n, n_classes)
    else:
        table = np.full((n, n_classes), -np.inf)
        table[np.arange(n), np.maximum(voters, 0)] = noisy
    return {samples[i].id: (samples[i], table[i]) for i in np.flatnonzero(voters >= 0).tolist()}


def remember(
    into: dict[str, tuple[Sample, float]], gen: Candidates, noisy: np.ndarray, idx: list[int]
) -> None:
    """Keep candidates idx with their latest noisy vote (and label), by id."""
    into.update({gen.samples[i].id: (gen.samples[i], float(noisy[i])) for i in idx})


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


def next_population(
    apis: TextAPIs, gen: Candidates, parents: list[int], L: int, cfg: PEConfig, t: int
) -> Candidates:
    """VARIATION API on the parents; lookahead variations are reused as children (no re-generation)."""
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


def final_output(
    gen: Candidates,
    noisy: np.ndarray,
    parents: list[int],
    mode: str,
    chosen: dict[str, tuple[Sample, float]] | None = None,
    voters: np.ndarray | None = None,
) -> PEResult:
    """'selected': the last selection (unique, best first); 'all': the whole last population;
    'union': every sample selected in any iteration (post-processing of noisy votes too)."""
    if mode == "union" and chosen is not None:
        return PEResult.of(chosen)
    if mode == "selected":
        idx = list(dict.fromkeys(parents))
    else:  # the whole population, but for the near-duplicates
        idx = [i for i in range(len(gen.samples)) if voters is None or voters[i] >= 0]
    out = [gen.samples[i] for i in idx]
    return PEResult(out, {gen.samples[i].id: float(noisy[i]) for i in idx})
