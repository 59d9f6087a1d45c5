"""DP length distribution: how long each class's private records are, as one noisy histogram of
word-count bins, so the RANDOM API asks for the lengths the data has instead of one fixed target.

The bins are public and fixed before the data is read (`LENGTH_EDGES`, in whitespace words, the
unit of every length target). Each record adds 1 to the cell (its class, its length bin): adding or
removing one record moves the (classes x bins) histogram by exactly 1 in L2. User level: each of a
user's records adds 1/(its user's record count), so a user's whole contribution has L2 norm <= 1
(triangle inequality) wherever its records fall. One Gaussian release covers all classes.

Turning the noisy histogram into target lengths (`LengthSampler`) is post-processing: per class,
bins keep their noisy count above 2 sigma (a bin with no record passes with probability 2.3%), a
class left with nothing falls back to all classes pooled, and a target is a bin drawn in
proportion, then a whole number of words uniform inside it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from augpe.privacy.vote import per_user_weights

__all__ = ["LENGTH_EDGES", "LengthSampler", "length_bin", "length_histogram"]

LENGTH_EDGES: tuple[int, ...] = (0, 10, 20, 30, 40, 50, 65, 80, 100, 125, 150, 200, 300, 500, 800)
"""Bin i holds lengths in [edges[i], edges[i+1]) words; the last bin holds everything >= 500."""


def length_bin(words: int) -> int:
    """The bin of a `words`-word text (lengths past the last edge go to the last bin)."""
    return min(int(np.searchsorted(LENGTH_EDGES, words, side="right")) - 1, len(LENGTH_EDGES) - 2)


def length_histogram(
    texts: Sequence[str],
    class_ids: np.ndarray,
    num_classes: int,
    user_ids: np.ndarray | None = None,
) -> np.ndarray:
    """CLEAN (classes x bins) histogram of word counts, flattened, L2 sensitivity 1.

    Released only through the Gaussian mechanism (the `lengths` release), never read otherwise."""
    bins = len(LENGTH_EDGES) - 1
    weight = np.ones(len(texts)) if user_ids is None else per_user_weights(user_ids)
    cells = [int(c) * bins + length_bin(len(t.split())) for t, c in zip(texts, class_ids)]
    hist = np.zeros(num_classes * bins, dtype=np.float64)
    np.add.at(hist, np.asarray(cells, dtype=np.int64), weight)
    return hist


class LengthSampler:
    """Target lengths for the RANDOM API, per class, from the noisy histogram (post-processing)."""

    def __init__(self, noisy: np.ndarray, num_classes: int, sigma: float, z: float = 2.0) -> None:
        rows = np.asarray(noisy, dtype=np.float64).reshape(num_classes, len(LENGTH_EDGES) - 1)
        kept = np.where(rows > z * sigma, rows, 0.0)
        pooled = kept.sum(axis=0)
        self.probs: list[np.ndarray | None] = []
        for row in kept:
            mass = row if row.sum() > 0 else pooled
            self.probs.append(mass / mass.sum() if mass.sum() > 0 else None)

    def mean_words(self, c: int) -> float | None:
        """The expected target of class `c` (for logs and the summary); None: no length survived."""
        p = self.probs[c]
        if p is None:
            return None
        mid = [(lo + hi - 1) / 2 for lo, hi in itertools.pairwise(LENGTH_EDGES)]
        return float(np.dot(p, mid))

    def draw(self, c: int, rng: np.random.Generator, fallback: int, most: int) -> int:
        """A target length in words for class `c`, at most `most`; `fallback` when no bin survived.

        Makes exactly two uniform draws either way, so the request's random stream after it does
        not depend on the histogram."""
        u_bin, u_words = rng.random(), rng.random()
        p = self.probs[c]
        if p is None:
            return min(fallback, most)
        i = min(int(np.searchsorted(np.cumsum(p), u_bin, side="right")), len(p) - 1)
        lo, hi = max(LENGTH_EDGES[i], 1), LENGTH_EDGES[i + 1]
        return min(lo + int(u_words * (hi - lo)), most)
