"""What a synthetic corpus is worth in real records, and how much of the gap to real data it closes.

The learning curve: one learner trained on random subsets of the real training split (16, 32,
64, ... texts, then the whole split; `draws` seeded draws per size, each with at least one text
of every class where the size allows), scored by balanced accuracy on the real test split. The
corpus is "worth n real records" where its own balanced accuracy meets that curve, interpolated
linearly in log n between the two sizes around the first crossing; below the smallest size it is
"< 16", above the curve's best "> N".

Gap closed: (corpus - base) / (real - base), with base the better of the eps = 0 baseline and a
constant answer (balanced accuracy 1 / number of classes, 0.5 for two): 0 is no better than what
the model writes without private data, 1 is as good as training on the real split.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "CURVE_DRAWS",
    "CURVE_START",
    "curve_sizes",
    "format_worth",
    "gap_closed",
    "learning_curve",
    "stratified_draw",
    "worth_real",
]

CURVE_START = 16
CURVE_DRAWS = 5


def curve_sizes(n_total: int, start: int = CURVE_START) -> list[int]:
    """start, 2 start, 4 start, ... below n_total, then n_total itself."""
    if n_total <= 0:
        return []
    sizes, s = [], start
    while s < n_total:
        sizes.append(s)
        s *= 2
    return [*sizes, n_total]


def stratified_draw(y: Sequence[str], n: int, rng: np.random.Generator) -> np.ndarray:
    """n distinct indices of y, sorted: one random text of every class first (when n is at least
    the number of classes), the rest uniformly from what is left."""
    labels = np.asarray(y)
    total = len(labels)
    if n >= total:
        return np.arange(total)
    classes = sorted(set(labels.tolist()))
    first: list[int] = []
    if n >= len(classes):
        first = [int(rng.choice(np.flatnonzero(labels == c))) for c in classes]
    pool = np.setdiff1d(np.arange(total), np.asarray(first, dtype=np.int64))
    rest = rng.choice(pool, size=n - len(first), replace=False)
    return np.sort(np.concatenate([np.asarray(first, dtype=np.int64), rest.astype(np.int64)]))


def learning_curve(
    score: Callable[[np.ndarray], float],
    y: Sequence[str],
    sizes: Sequence[int],
    draws: int = CURVE_DRAWS,
    seed: int = 0,
    until: float | None = None,
) -> dict[str, Any]:
    """`score(indices)` of `draws` stratified draws per size (one at the full size: every draw
    would be the same set). The draw of (seed, size, d) is the same for every learner.

    `until`: stop after the first size whose mean reaches it (the best score of the corpora the
    curve is read for): `worth_real` reads the first crossing, so the larger sizes, the costly
    ones, would change no answer."""
    means, stds, per_size, done = [], [], [], []
    for n in sizes:
        k = 1 if n >= len(y) else draws
        got = [
            float(score(stratified_draw(y, n, np.random.default_rng([seed, n, d]))))
            for d in range(k)
        ]
        per_size.append([round(v, 5) for v in got])
        means.append(round(float(np.mean(got)), 5))
        stds.append(round(float(np.std(got)), 5))
        done.append(n)
        if until is not None and means[-1] >= until:
            break
    return {
        "metric": "balanced_accuracy",
        "sizes": done,
        "mean": means,
        "std": stds,
        "scores": per_size,
        "draws": draws,
        "seed": seed,
    }


def worth_real(curve: dict[str, Any], value: float | None) -> dict[str, Any] | None:
    """How many real records score `value` on `curve`: {"relation": "~", "n": 61.2} inside the
    curve, {"relation": "<", "n": 16} below its first size, {"relation": ">", "n": N} above its
    best; None without a value or a curve."""
    sizes, means = list(curve.get("sizes") or []), list(curve.get("mean") or [])
    if value is None or not sizes:
        return None
    hit = next((i for i, m in enumerate(means) if m >= value), None)
    if hit is None:
        return {"relation": ">", "n": sizes[-1]}
    if hit == 0:
        return {"relation": "~" if means[0] == value else "<", "n": sizes[0]}
    lo, hi = means[hit - 1], means[hit]  # lo < value <= hi
    t = (value - lo) / (hi - lo)
    log_n = math.log(sizes[hit - 1]) + t * (math.log(sizes[hit]) - math.log(sizes[hit - 1]))
    return {"relation": "~", "n": round(math.exp(log_n), 1)}


def format_worth(w: dict[str, Any] | None) -> str:
    """'~61', '< 16', '> 4000' or 'n/a'."""
    if not w:
        return "n/a"
    if w["relation"] == "~":
        return f"~{w['n']:.0f}"
    return f"{w['relation']} {w['n']}"


def gap_closed(
    value: float | None, eps0: float | None, real: float | None, constant: float
) -> float | None:
    """(value - base) / (real - base), base = max(eps0, constant); None without a value or a
    real score above the base."""
    if value is None or real is None:
        return None
    base = max(constant, eps0) if eps0 is not None else constant
    if real <= base:
        return None
    return round((value - base) / (real - base), 4)
