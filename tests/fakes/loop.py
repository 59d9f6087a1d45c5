"""Stand-ins for every component `augpe.pe.loop.evolve` drives, small enough to reason about.

`FakeAPIs` writes texts that say where they come from ("random c1 #3", "<parent> / v2"), so a
test reads the lineage off the text. `TableEmbedder` gives each distinct text its own fixed
random direction (near-orthogonal in 64 dimensions): two texts are close only if they are equal.
`MemoryState` keeps populations and noisy histograms in dicts and makes the noisy release with a
fixed, deterministic `noise(t, clean) -> noisy` given by the test, so a test decides exactly what
the loop may read. `CountingVote` is the clean (private) histogram, counting its calls.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from augpe.records.sample import Sample

__all__ = ["CountingVote", "FakeAPIs", "MemoryState", "StageTimer", "TableEmbedder"]


class FakeAPIs:
    """The RANDOM and VARIATION APIs of `augpe.pe.apis.TextAPIs`, without a model.

    echo_first: the first variation of every parent repeats the parent's text word for word
    (a near-duplicate, which `pe.dedup` must keep out of the vote)."""

    def __init__(self, echo_first: bool = False) -> None:
        self.echo_first = echo_first
        self.calls: list[tuple[str, int, int]] = []  # (api, iteration, samples made)
        self._n = 0

    def _new(self, text: str, c: int, t: int, parent: str | None, op: str) -> Sample:
        self._n += 1
        return Sample(f"s{self._n:04d}", text, c, t, parent, "fake", op)

    def random(self, class_ids: Sequence[int], iteration: int = 0, stream: int = 0) -> list[Sample]:
        out = [
            self._new(f"random c{c} #{i}", c, iteration, None, "random")
            for i, c in enumerate(class_ids)
        ]
        self.calls.append(("random", iteration, len(out)))
        return out

    def vary(
        self, parents: Sequence[Sample], n_each: int, iteration: int, stream: int = 0
    ) -> list[Sample]:
        out = []
        for p in parents:
            for j in range(n_each):
                text = (
                    p.text
                    if self.echo_first and j == 0
                    else f"{p.text} / v{iteration}.{stream}.{j}"
                )
                out.append(self._new(text, p.class_id, iteration, p.id, "rephrase"))
        self.calls.append(("vary", iteration, len(out)))
        return out


class TableEmbedder:
    """A fixed random unit vector per distinct text (seeded by the text): equal texts, equal rows."""

    name = "table-embedder"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls: list[tuple[str, int]] = []

    def encode(self, texts: Sequence[str], desc: str = "") -> np.ndarray:
        self.calls.append((desc, len(texts)))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            v = np.random.default_rng(zlib.crc32(text.encode())).standard_normal(self.dim)
            out[i] = v / np.linalg.norm(v)
        return out


class CountingVote:
    """The clean vote histogram: `clean(classes)` per call (default: 10 votes for the first
    candidate of each class, 0 elsewhere). Records the classes it was asked to vote over."""

    def __init__(self, clean: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.clean = clean or first_of_each_class
        self.classes: list[np.ndarray] = []

    def __call__(self, emb: np.ndarray, classes: np.ndarray) -> np.ndarray:
        assert emb.shape[0] == classes.shape[0]
        self.classes.append(classes.copy())
        return self.clean(classes)


def first_of_each_class(classes: np.ndarray) -> np.ndarray:
    out = np.zeros(classes.size)
    for c in np.unique(classes[classes >= 0]):
        out[np.flatnonzero(classes == c)[0]] = 10.0
    return out


class MemoryState:
    """The loop's population cache and DP step in memory: populations and noisy histograms kept
    by iteration.

    noise(t, clean) -> the noisy release of iteration t (a stand-in for the Gaussian mechanism).
    Pre-filled `noisy` entries are reused as a resumed run reuses them: the clean vote is not run."""

    def __init__(self, noise: Callable[[int, np.ndarray], np.ndarray]) -> None:
        self.noise = noise
        self.populations: dict[int, object] = {}
        self.noisy: dict[int, np.ndarray] = {}
        self.log: list[tuple[int, dict[str, object]]] = []

    def population(self, t: int, make: Callable[[], object]) -> object:
        if t not in self.populations:
            self.populations[t] = make()
        return self.populations[t]

    def release(
        self, t: int, population: list[Sample], votes: Callable[[], np.ndarray]
    ) -> np.ndarray:
        if t not in self.noisy:
            clean = votes()
            assert clean.shape == (len(population),)
            self.noisy[t] = np.asarray(self.noise(t, clean), dtype=np.float64)
        return self.noisy[t]

    def log_iteration(self, t: int, record: dict[str, object]) -> None:
        self.log.append((t, record))


class StageTimer:
    """The `Timer.stage` context manager, recording the order of the stages."""

    def __init__(self) -> None:
        self.stages: list[tuple[int, str]] = []

    @contextmanager
    def stage(self, iteration: int, name: str) -> Iterator[None]:
        self.stages.append((iteration, name))
        yield
