"""What a run releases as its corpus: one `OutputPolicy` per `pe.output` mode, chosen by name.

Every policy watches each iteration's noisy votes (`observe`) and, after the last, says which
texts with which (noisy) votes make the corpus (`result`). All of it is post-processing of the
noisy votes: no policy sees a clean count or a private record.

    selected  the last selection (unique, best first)
    all       the whole last population, but for the near-duplicates
    union     every text selected in any iteration, with its latest noisy vote
    voted     every text voted on in any iteration whose latest noisy vote is >= pe.min_votes
    soft      every (text, class) cell of any iteration's noisy votes >= pe.min_votes: the text
              under that class, weighted by the cell (a soft label)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from augpe.records.sample import Sample

__all__ = ["COPY_SEP", "OUTPUT_POLICIES", "OutputPolicy", "PEResult", "Voted", "make_output"]

COPY_SEP = "~"  # output `soft`: the id of a text's copy under a second class is `<id>~<class>`


@dataclass(frozen=True)
class Voted:
    """One iteration's candidates and their noisy votes; `voters[i]` is the class whose records
    could vote for candidate i (-1: a near-duplicate, which gets no vote)."""

    samples: list[Sample]
    noisy: np.ndarray
    voters: np.ndarray


@dataclass
class PEResult:
    output: list[Sample]
    votes: dict[str, float]  # noisy votes of each output sample at the final iteration
    weighted: bool = False  # output `soft`: each sample's noisy votes are its training weight

    @classmethod
    def of(cls, picked: dict[str, tuple[Sample, float]]) -> PEResult:
        return cls([s for s, _ in picked.values()], {k: v for k, (_, v) in picked.items()})

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


class OutputPolicy(Protocol):
    """Chooses the released corpus from the noisy votes of every iteration."""

    def observe(self, cast: Voted, ranked: Voted, parents: list[int]) -> None:
        """One iteration: the votes as cast (per class, or the cross-class (candidate, class)
        histogram) and as ranked (after relabelling), and the parents selected from them."""
        ...

    def result(self) -> PEResult: ...


def _latest(into: dict[str, tuple[Sample, float]], v: Voted, idx: list[int]) -> None:
    """Keep candidates idx with their latest noisy vote (and label), by id."""
    into.update({v.samples[i].id: (v.samples[i], float(v.noisy[i])) for i in idx})


class Last:
    """`selected` (the last parents) or `all` (the last population, near-duplicates out)."""

    def __init__(self, everyone: bool) -> None:
        self.everyone = everyone
        self.last: tuple[Voted, list[int]] | None = None

    def observe(self, cast: Voted, ranked: Voted, parents: list[int]) -> None:
        self.last = (ranked, parents)

    def result(self) -> PEResult:
        assert self.last is not None, "no iteration was observed"
        v, parents = self.last
        if self.everyone:
            idx = [i for i in range(len(v.samples)) if v.voters[i] >= 0]
        else:
            idx = list(dict.fromkeys(parents))
        return PEResult(
            [v.samples[i] for i in idx], {v.samples[i].id: float(v.noisy[i]) for i in idx}
        )


class Union:
    """`union`: every parent of any iteration, with its latest noisy vote."""

    def __init__(self) -> None:
        self.chosen: dict[str, tuple[Sample, float]] = {}

    def observe(self, cast: Voted, ranked: Voted, parents: list[int]) -> None:
        _latest(self.chosen, ranked, parents)

    def result(self) -> PEResult:
        return PEResult.of(self.chosen)


class AllVoted:
    """`voted`: every candidate any iteration's noisy vote vouches for (>= `least`)."""

    def __init__(self, least: float) -> None:
        self.least = least
        self.voted: dict[str, tuple[Sample, float]] = {}

    def observe(self, cast: Voted, ranked: Voted, parents: list[int]) -> None:
        _latest(self.voted, ranked, np.flatnonzero(ranked.voters >= 0).tolist())

    def result(self) -> PEResult:
        return PEResult.of({k: sv for k, sv in self.voted.items() if sv[1] >= self.least})


class Soft:
    """`soft`: each (candidate, class) cell of its latest noisy votes >= `least`, weighted by it."""

    def __init__(self, least: float, n_classes: int, cross: bool) -> None:
        self.least, self.n_classes, self.cross = least, n_classes, cross
        self.cells: dict[str, tuple[Sample, np.ndarray]] = {}

    def observe(self, cast: Voted, ranked: Voted, parents: list[int]) -> None:
        n = len(cast.samples)
        if self.cross:  # the row of the cross-class histogram
            table = cast.noisy.reshape(n, self.n_classes)
        else:  # its one count in its own class, -inf elsewhere
            table = np.full((n, self.n_classes), -np.inf)
            table[np.arange(n), np.maximum(cast.voters, 0)] = cast.noisy
        for i in np.flatnonzero(cast.voters >= 0).tolist():
            self.cells[cast.samples[i].id] = (cast.samples[i], table[i])

    def result(self) -> PEResult:
        out, votes = [], {}
        for s, row in self.cells.values():
            for c in np.flatnonzero(row >= self.least).tolist():
                sid = s.id if c == s.class_id else f"{s.id}{COPY_SEP}{c}"
                out.append(replace(s, id=sid, class_id=c))
                votes[sid] = float(row[c])
        return PEResult(out, votes, weighted=True)


OUTPUT_POLICIES: dict[str, Callable[[float, int, bool], OutputPolicy]] = {
    "selected": lambda least, n_classes, cross: Last(everyone=False),
    "all": lambda least, n_classes, cross: Last(everyone=True),
    "union": lambda least, n_classes, cross: Union(),
    "voted": lambda least, n_classes, cross: AllVoted(least),
    "every": lambda least, n_classes, cross: AllVoted(-np.inf),
    "soft": lambda least, n_classes, cross: Soft(least, n_classes, cross),
}
"""pe.output -> a fresh policy, given (pe.min_votes or 0, number of classes, cross-class vote)."""


def make_output(mode: str, min_votes: float | None, n_classes: int, cross: bool) -> OutputPolicy:
    """The policy of `pe.output`."""
    if mode not in OUTPUT_POLICIES:
        raise ValueError(f"pe.output must be one of {sorted(OUTPUT_POLICIES)}, got {mode!r}")
    return OUTPUT_POLICIES[mode](min_votes or 0.0, n_classes, cross)
