"""Distribution fidelity on sentence embeddings: FID, MAUVE, k-NN precision / recall, lengths.

Each metric is a small function of two arrays, so each can be checked on constructed data where
the answer is known (identical sets: FID 0, MAUVE 1, precision = recall = 1).

MAUVE is our own implementation of Pillutla et al. (NeurIPS 2021), following the published
algorithm and the defaults of the `mauve-text` package (L2-normalise, PCA to 90% explained
variance, k-means with n/10 buckets, 25-point divergence curve, scaling c = 5); on the same
features it agrees with `mauve-text` up to k-means randomness (a test checks this when the
package is installed). k-NN precision / recall follow Kynkaenniemi et al. (NeurIPS 2019).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

_WORD = re.compile(r"\S+")
MAUVE_MIN_SAMPLES = 100  # below this, n/10 buckets are too few for MAUVE to discriminate


def _as_2d(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty (n, dim) array, got shape {a.shape}")
    return a


def fid(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two embedding sets (lower is closer)."""
    from scipy import linalg

    a, b = _as_2d(real, "real"), _as_2d(synthetic, "synthetic")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("FID needs at least 2 samples on each side")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # fewer samples than dimensions: a singular product is expected
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # singular product: regularise as pytorch-fid does
        off = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    if np.any((p > 0) & (q == 0)):
        return float("inf")
    m = (p > 0) & (q > 0)
    return float(np.sum(p[m] * np.log(p[m] / q[m])))


def mauve_histograms(
    p_features: np.ndarray,
    q_features: np.ndarray,
    num_buckets: int | str = "auto",
    explained_variance: float = 0.9,
    n_init: int = 5,
    max_iter: int = 500,
    seed: int = 25,
) -> tuple[np.ndarray, np.ndarray]:
    """Quantise both sets jointly (PCA + k-means) and return their bucket histograms."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    p, q = _as_2d(p_features, "p_features"), _as_2d(q_features, "q_features")
    k = max(2, round(min(len(p), len(q)) / 10)) if num_buckets == "auto" else int(num_buckets)
    data = np.vstack([q, p])
    data = data / np.maximum(np.linalg.norm(data, axis=1, keepdims=True), 1e-12)
    k = min(k, len(np.unique(data.round(6), axis=0)))
    if k < 2:  # every point identical: one bucket holds both distributions entirely
        return np.ones(1), np.ones(1)
    pca = PCA(n_components=None, whiten=False, random_state=seed + 1).fit(data)
    keep = int(np.argmax(np.cumsum(pca.explained_variance_ratio_) >= explained_variance)) + 1
    reduced = pca.transform(data)[:, :keep].astype(np.float32)
    km = KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, random_state=seed + 2).fit(reduced)
    labels = km.labels_
    q_hist = np.bincount(labels[: len(q)], minlength=k).astype(np.float64)
    p_hist = np.bincount(labels[len(q) :], minlength=k).astype(np.float64)
    return p_hist / p_hist.sum(), q_hist / q_hist.sum()


def mauve_from_histograms(
    p: np.ndarray, q: np.ndarray, scaling: float = 5.0, points: int = 25
) -> float:
    """Area under the divergence curve {(exp(-c KL(Q||R)), exp(-c KL(P||R))): R = wP + (1-w)Q}."""
    curve = [[0.0, np.inf]]
    for w in np.linspace(1e-6, 1 - 1e-6, points):
        r = w * p + (1 - w) * q
        curve.append([_kl(q, r), _kl(p, r)])
    curve.append([np.inf, 0.0])
    x, y = np.exp(-scaling * np.asarray(curve)).T
    # Sort along the frontier (x falls as y rises); ties, as when P == Q, are broken in curve order.
    i1, i2 = np.lexsort((-y, x)), np.lexsort((-x, y))
    area = 0.5 * (_trapezoid(y[i1], x[i1]) + _trapezoid(x[i2], y[i2]))
    return float(area)


def mauve(
    p_features: np.ndarray,
    q_features: np.ndarray,
    num_buckets: int | str = "auto",
    scaling: float = 5.0,
    seed: int = 25,
    n_init: int = 5,
) -> float:
    """MAUVE between two embedding sets, in (0, 1]; 1 means indistinguishable at this quantisation."""
    p, q = mauve_histograms(p_features, q_features, num_buckets, n_init=n_init, seed=seed)
    return mauve_from_histograms(p, q, scaling)


def _kth_neighbour_radii(x: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """Distance of every row of x to its k-th nearest other row."""
    out = np.empty(len(x))
    sq = (x * x).sum(1)
    for s in range(0, len(x), chunk):
        d = sq[s : s + chunk, None] + sq[None, :] - 2.0 * x[s : s + chunk] @ x.T
        d = np.sqrt(np.maximum(d, 0.0))
        out[s : s + chunk] = np.partition(d, k, axis=1)[:, k]  # index 0 is the point itself
    return out


def _covered(
    points: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk: int = 2048
) -> np.ndarray:
    """For each point: is it inside the k-NN ball of at least one centre?"""
    out = np.empty(len(points), dtype=bool)
    sq_c = (centres * centres).sum(1)
    for s in range(0, len(points), chunk):
        p = points[s : s + chunk]
        d = (p * p).sum(1)[:, None] + sq_c[None, :] - 2.0 * p @ centres.T
        d = np.sqrt(np.maximum(d, 0.0))
        out[s : s + chunk] = (d <= radii[None, :] + 1e-9).any(1)
    return out


def knn_precision_recall(
    real: np.ndarray, synthetic: np.ndarray, k: int = 3
) -> tuple[float, float]:
    """Precision: share of synthetic samples inside the real manifold (union of k-NN balls of real
    samples); recall: share of real samples inside the synthetic manifold."""
    a, b = _as_2d(real, "real"), _as_2d(synthetic, "synthetic")
    if len(a) <= k or len(b) <= k:
        raise ValueError(
            f"k-NN precision/recall with k={k} needs more than {k} samples on each side"
        )
    precision = float(_covered(b, a, _kth_neighbour_radii(a, k)).mean())
    recall = float(_covered(a, b, _kth_neighbour_radii(b, k)).mean())
    return precision, recall


def word_counts(texts: Sequence[str]) -> np.ndarray:
    return np.array([len(_WORD.findall(t)) for t in texts], dtype=np.int64)


def length_stats(texts: Sequence[str]) -> dict[str, float]:
    n = word_counts(texts)
    if len(n) == 0:
        return {"mean": 0.0, "median": 0.0, "std": 0.0, "min": 0, "max": 0}
    return {
        "mean": round(float(n.mean()), 2),
        "median": float(np.median(n)),
        "std": round(float(n.std()), 2),
        "min": int(n.min()),
        "max": int(n.max()),
    }


def length_comparison(synthetic: Sequence[str], real: Sequence[str]) -> dict[str, Any]:
    """Words per text on each side, their Wasserstein-1 distance (in words) and KS statistic."""
    from scipy.stats import ks_2samp, wasserstein_distance

    a, b = word_counts(synthetic), word_counts(real)
    return {
        "synthetic": length_stats(synthetic),
        "real": length_stats(real),
        "wasserstein_words": round(float(wasserstein_distance(a, b)), 3),
        "ks_statistic": round(float(ks_2samp(a, b).statistic), 4),
    }


def fidelity_metrics(
    real_emb: np.ndarray,
    synthetic_emb: np.ndarray,
    real_texts: Sequence[str],
    synthetic_texts: Sequence[str],
    k: int = 3,
    seed: int = 25,
) -> dict[str, Any]:
    """All fidelity metrics; a metric that cannot be computed (too few samples) is None with a note."""
    out: dict[str, Any] = {"n_synthetic": len(synthetic_texts), "n_real": len(real_texts)}
    notes: list[str] = []
    try:
        out["fid"] = round(fid(real_emb, synthetic_emb), 5)
    except ValueError as err:
        out["fid"] = None
        notes.append(f"fid: {err}")
    if min(len(synthetic_texts), len(real_texts)) < MAUVE_MIN_SAMPLES:
        notes.append(
            f"mauve: fewer than {MAUVE_MIN_SAMPLES} texts on a side, so only a few buckets; "
            "it is close to 1 for almost any pair of corpora (read FID / precision / recall instead)"
        )
    try:
        out["mauve"] = round(mauve(synthetic_emb, real_emb, seed=seed), 5)
    except ValueError as err:
        out["mauve"] = None
        notes.append(f"mauve: {err}")
    try:
        p, r = knn_precision_recall(real_emb, synthetic_emb, k)
        out["precision"], out["recall"] = round(p, 5), round(r, 5)
    except ValueError as err:
        out["precision"] = out["recall"] = None
        notes.append(f"precision/recall: {err}")
    out["knn_k"] = k
    out["length"] = length_comparison(synthetic_texts, real_texts)
    if notes:
        out["notes"] = notes
    return out
