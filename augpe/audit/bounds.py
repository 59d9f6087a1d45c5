"""The one-run estimator: how many right guesses an (eps, delta)-DP run allows, and the largest
eps a guessing score rejects (Theorem 3 / App. D of Steinke, Nasr & Jagielski 2023); AUROC and
TPR at low FPR of a membership score. Pure maths on scores and coin flips: no run, no model."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom, rankdata

__all__ = [
    "OneRunBound",
    "auroc",
    "epsilon_lower_bound",
    "guesses_from_scores",
    "one_run_bound",
    "p_value_one_run",
    "tpr_at_fpr",
]


def p_value_one_run(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """P[>= v correct out of r guesses] for an (eps, delta)-DP run with m random canaries.

    Theorem 3 of the paper (Algorithm 2 / App. D for delta > 0): for all v,
        P[W >= v] <= P[W' >= v] + 2 m delta * max_{i=1..v} P[v - i <= W' < v] / i,
    W' ~ Binomial(r, q), q = e^eps / (1 + e^eps): the accuracy of eps-DP randomised response.
    """
    if not (0 <= v <= r <= m):
        raise ValueError(f"need 0 <= v <= r <= m, got v={v}, r={r}, m={m}")
    if not (eps >= 0.0 and 0.0 <= delta <= 1.0):
        raise ValueError(f"need eps >= 0 and 0 <= delta <= 1, got eps={eps}, delta={delta}")
    if v == 0:
        return 1.0
    q = 1.0 / (1.0 + math.exp(-eps)) if eps < 700 else 1.0
    tail = float(binom.sf(v - 1, r, q))  # P[W' >= v]
    if delta == 0.0:
        return min(tail, 1.0)
    below = binom.pmf(np.arange(v - 1, -1, -1), r, q)  # P[W' = v - i], i = 1..v
    alpha = float(np.max(np.cumsum(below) / np.arange(1, v + 1)))
    return min(tail + 2.0 * m * delta * alpha, 1.0)


def epsilon_lower_bound(m: int, r: int, v: int, delta: float, beta: float = 0.05) -> float:
    """The largest eps the audit rejects at level beta: p_value_one_run(eps) < beta below it.

    Bisection as in App. D of the paper; the low end of the final bracket is returned, so the
    bound errs small (an audit must never overstate leakage).
    """
    if not 0.0 < beta < 1.0:
        raise ValueError(f"beta must be in (0, 1), got {beta}")
    if p_value_one_run(m, r, v, 0.0, delta) >= beta:
        return 0.0
    lo, hi = 0.0, 1.0
    while p_value_one_run(m, r, v, hi, delta) < beta:
        lo, hi = hi, hi * 2.0
        if hi > 1e4:  # only reachable with delta = 0 and r = v huge
            return lo
    for _ in range(40):  # bracket width / 2^40: far below any printed digit
        mid = 0.5 * (lo + hi)
        if p_value_one_run(m, r, v, mid, delta) < beta:
            lo = mid
        else:
            hi = mid
    return lo


def guesses_from_scores(scores: np.ndarray, k_in: int, k_out: int, seed: int = 0) -> np.ndarray:
    """+1 ("in") for the k_in highest scores, -1 ("out") for the k_out lowest, 0 (abstain) else.

    Ties are broken by a seeded random order, never by canary index.
    """
    s = np.asarray(scores, dtype=np.float64)
    m = s.size
    if k_in < 0 or k_out < 0 or k_in + k_out > m:
        raise ValueError(f"need k_in, k_out >= 0 and k_in + k_out <= m={m}, got {k_in}, {k_out}")
    order = np.lexsort((np.random.default_rng(seed).random(m), s))  # ascending score
    g = np.zeros(m, dtype=np.int64)
    if k_out:
        g[order[:k_out]] = -1
    if k_in:
        g[order[m - k_in :]] = 1
    return g


@dataclass(frozen=True)
class OneRunBound:
    eps_lower_bound: float
    k: int  # guesses per side
    guesses: int  # r = 2k
    correct: int  # v
    beta: float  # the level this k was tested at (after corrections)


def one_run_bound(
    scores: np.ndarray,
    included: np.ndarray,
    delta: float,
    beta: float = 0.05,
    k: int | Sequence[int] | None = None,
) -> OneRunBound:
    """The one-run eps lower bound of one score. k: guesses per side, fixed in advance
    (default m // 4); a list of k values is searched with a Bonferroni correction (beta / len)."""
    inc = np.asarray(included, dtype=bool)
    m = inc.size
    ks = (
        [max(1, m // 4)]
        if k is None
        else ([int(k)] if isinstance(k, (int, np.integer)) else list(k))
    )
    if not ks or any(kk < 1 or 2 * kk > m for kk in ks):
        raise ValueError(f"every k must satisfy 1 <= k <= m/2 = {m / 2}, got {ks}")
    level = beta / len(ks)
    truth = np.where(inc, 1, -1)
    best: OneRunBound | None = None
    for kk in ks:
        g = guesses_from_scores(scores, kk, kk)
        v = int(np.sum(g == truth))
        lb = epsilon_lower_bound(m, 2 * kk, v, delta, level)
        if best is None or lb > best.eps_lower_bound:
            best = OneRunBound(lb, kk, 2 * kk, v, level)
    assert best is not None
    return best


# ---- membership-inference metrics ------------------------------------------------------------
def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney; ties count 1/2). nan if one class is empty."""
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(np.asarray(scores, dtype=np.float64))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def tpr_at_fpr(scores: np.ndarray, labels: np.ndarray, fpr: float) -> float:
    """The highest TPR of a threshold rule "in iff score >= t" whose FPR is <= fpr.

    With n negatives the FPR moves in steps of 1/n: below 1/n this is the TPR at zero false
    positives."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    best = 0.0
    for t in np.unique(s):
        pred = s >= t
        if (pred & ~y).sum() / n_neg <= fpr + 1e-12:
            best = max(best, float((pred & y).sum() / n_pos))
    return best
