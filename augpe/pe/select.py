"""Choosing parents and class sizes. Everything here reads only noisy (DP) values."""

from __future__ import annotations

from typing import Literal

import numpy as np

from augpe.config import PrivacyConfig
from augpe.errors import ConfigError


def select_parents(
    noisy: np.ndarray,
    n: int,
    method: Literal["rank", "prob"],
    threshold: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Indices of the next parents among `noisy` (one class's bins).

    rank: the n highest noisy counts (ties broken by index, deterministic);
    prob: n draws with replacement, probability proportional to max(count - H, 0)
    (uniform when every clipped count is zero).
    """
    if n <= 0 or noisy.size == 0:
        return np.zeros(0, dtype=np.int64)
    clipped = np.maximum(noisy - threshold, 0.0)
    if method == "rank":
        order = np.lexsort((np.arange(noisy.size), -clipped, -noisy))
        return order[: min(n, noisy.size)].astype(np.int64)
    total = clipped.sum()
    p = clipped / total if total > 0 else np.full(noisy.size, 1.0 / noisy.size)
    return rng.choice(noisy.size, size=n, replace=True, p=p).astype(np.int64)


def min_votes_for(sigma: float, sigmas: float = 2.0) -> float:
    """The default `pe.min_votes` of output `voted`: `sigmas` times the vote's noise sigma, and at
    least one vote (without noise, a candidate no record voted for stays out)."""
    return max(sigmas * sigma, 1.0)


def allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Split `total` samples over classes by (noisy or public) weights, >= 1 each.

    Largest-remainder rounding; negative noisy weights are clipped to 0; all-zero weights give
    an equal split. Raises ValueError when total < number of classes.
    """
    n_cls = weights.size
    if total < n_cls:
        raise ValueError(
            f"pe.samples={total} is smaller than the number of classes ({n_cls}); "
            "every class needs at least one synthetic sample"
        )
    w = np.maximum(np.asarray(weights, dtype=np.float64), 0.0)
    w = w / w.sum() if w.sum() > 0 else np.full(n_cls, 1.0 / n_cls)
    spare = total - n_cls  # one per class is guaranteed first
    raw = w * spare
    base = np.floor(raw).astype(np.int64)
    rest = spare - int(base.sum())
    order = np.lexsort((np.arange(n_cls), -(raw - base)))
    base[order[:rest]] += 1
    return base + 1


def class_sizes(
    privacy: PrivacyConfig, total: int, class_names: list[str], noisy_counts: np.ndarray | None
) -> np.ndarray:
    """Samples per class from DP counts, public fractions or a uniform split (never raw counts)."""
    if privacy.class_counts == "uniform":
        return allocate(total, np.ones(len(class_names)))
    if privacy.class_counts == "public":
        fr = privacy.public_class_fractions or {}
        missing = [c for c in class_names if c not in fr]
        if missing:
            raise ConfigError(f"privacy.public_class_fractions has no entry for classes {missing}")
        return allocate(total, np.array([fr[c] for c in class_names]))
    assert noisy_counts is not None, "class_counts: dp needs the noisy class counts"
    return allocate(total, noisy_counts)
