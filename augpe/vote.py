"""The nearest-neighbour vote: the only place private data touches synthetic data.

Each private record gives 1/sqrt(k) to each of its k nearest synthetic samples *of its own
class*, so its vote vector has L2 norm exactly 1 (the sensitivity the noise is calibrated for).
With user ids, every user's summed vote vector is rescaled to norm <= 1 instead (user-level DP).
The clean histogram returned here never leaves memory: only its noisy version is stored.
"""

from __future__ import annotations

from typing import Literal

import faiss
import numpy as np


class NonFiniteEmbedding(ValueError):
    """An embedding holds NaN or inf: faiss would answer id -1 and break the sensitivity bound."""


def check_finite(x: np.ndarray, what: str) -> None:
    """Refuse NaN / inf rows by position (never by content): faiss gives them id -1."""
    bad = ~np.isfinite(np.asarray(x, dtype=np.float64)).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise NonFiniteEmbedding(
            f"{what}: {rows.size} embedding row(s) hold NaN or inf (first at row {int(rows[0])}); "
            "the vote refuses them, because the nearest-neighbour search cannot rank them"
        )


def _valid_ids(ids: np.ndarray, n_base: int) -> np.ndarray:
    """The sensitivity guard on faiss output: ids in range and distinct per row, or an error.

    A -1 (no neighbour found) or a repeated id would let one record put more than 1/sqrt(k) into a
    bin, so its vote vector could exceed L2 norm 1. Exact flat search never does this on finite
    input; any index that does is a bug we must not publish through.
    """
    if ids.size and (ids.min() < 0 or ids.max() >= n_base):
        raise RuntimeError("k-NN search returned an id outside the synthetic samples (faiss -1)")
    if ids.shape[1] > 1:
        s = np.sort(ids, axis=1)
        if (s[:, 1:] == s[:, :-1]).any():
            raise RuntimeError("k-NN search returned the same synthetic sample twice for a record")
    return ids


def _prepare(x: np.ndarray, distance: str) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if distance == "cosine":
        x = x.copy()
        faiss.normalize_L2(x)
    return x


def knn_search(
    queries: np.ndarray,
    base: np.ndarray,
    k: int,
    distance: Literal["cosine", "l2"],
    chunk: int = 65536,
    rows: np.ndarray | None = None,
):
    """Exact k-NN ids of each query row in `base`, streamed over query chunks (bounded memory).

    `rows` selects the query rows (one class's records); they are gathered one chunk at a time, so
    no copy of a whole class's embeddings is ever made (1M private rows: 1.4 GiB saved).
    """
    if k > base.shape[0]:
        raise ValueError(f"k={k} exceeds the {base.shape[0]} synthetic samples it votes among")
    base = _prepare(base, distance)
    index = (
        faiss.IndexFlatIP(base.shape[1])
        if distance == "cosine"
        else faiss.IndexFlatL2(base.shape[1])
    )
    index.add(base)
    n = queries.shape[0] if rows is None else rows.size
    for start in range(0, n, chunk):
        q = queries[start : start + chunk] if rows is None else queries[rows[start : start + chunk]]
        _, ids = index.search(_prepare(q, distance), k)
        yield start, _valid_ids(ids, base.shape[0])


def vote_histogram(
    private_emb: np.ndarray,
    private_class: np.ndarray,
    synthetic_emb: np.ndarray,
    synthetic_class: np.ndarray,
    k: int = 1,
    distance: Literal["cosine", "l2"] = "cosine",
    user_ids: np.ndarray | None = None,
    chunk: int = 65536,
) -> np.ndarray:
    """Clean vote counts, one bin per synthetic sample (all classes concatenated)."""
    check_finite(private_emb, "private embeddings")
    check_finite(synthetic_emb, "synthetic embeddings")
    hist = np.zeros(synthetic_emb.shape[0], dtype=np.float64)
    w = 1.0 / np.sqrt(k)
    rows: list[np.ndarray] = []  # (record index, bin) pairs, only kept for user-level votes
    bins_all: list[np.ndarray] = []
    for c in np.unique(private_class):
        priv_idx = np.flatnonzero(private_class == c)
        syn_idx = np.flatnonzero(synthetic_class == c)
        if syn_idx.size == 0:
            continue  # every generation of this class failed: its records cast no vote this round
        # Fewer than k candidates (generations dropped): vote for all of them, still 1/sqrt(k)
        # each, so the record's vector has norm sqrt(n/k) < 1 and the sensitivity bound holds.
        k_c = min(k, syn_idx.size)
        for start, ids in knn_search(
            private_emb, synthetic_emb[syn_idx], k_c, distance, chunk, rows=priv_idx
        ):
            bins = syn_idx[ids]  # (n, k) global bin ids, distinct within a row
            if user_ids is None:
                np.add.at(hist, bins.ravel(), w)
            else:
                rec = np.repeat(priv_idx[start : start + ids.shape[0]], k_c)
                rows.append(rec)
                bins_all.append(bins.ravel())
    if user_ids is not None and rows:
        hist += _user_level(np.concatenate(rows), np.concatenate(bins_all), user_ids, w, hist.size)
    return hist


def _user_level(
    records: np.ndarray, bins: np.ndarray, user_ids: np.ndarray, w: float, n_bins: int
) -> np.ndarray:
    """Sum each user's votes, then scale every user's vector to L2 norm 1."""
    users = np.asarray(user_ids)[records]
    pairs, counts = np.unique(np.stack([users, bins]), axis=1, return_counts=True)
    vals = counts * w
    _, inv = np.unique(pairs[0], return_inverse=True)
    norms = np.sqrt(np.bincount(inv, weights=vals**2))
    out = np.zeros(n_bins, dtype=np.float64)
    np.add.at(out, pairs[1], vals / norms[inv])
    return out


def class_histogram(
    class_ids: np.ndarray, num_classes: int, user_ids: np.ndarray | None = None
) -> np.ndarray:
    """Clean per-class record counts, sensitivity 1 (released only with noise, for class sizes).

    Record level: one record moves one count by 1. User level: each user's count vector is scaled
    to L2 norm 1, so removing a user (however many records it has) moves the histogram by <= 1.
    """
    if user_ids is None:
        return np.bincount(class_ids, minlength=num_classes).astype(np.float64)
    pairs, counts = np.unique(
        np.stack([np.asarray(user_ids), class_ids]), axis=1, return_counts=True
    )
    _, inv = np.unique(pairs[0], return_inverse=True)
    norms = np.sqrt(np.bincount(inv, weights=counts.astype(np.float64) ** 2))
    out = np.zeros(num_classes, dtype=np.float64)
    np.add.at(out, pairs[1], counts / norms[inv])
    return out
