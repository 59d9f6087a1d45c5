"""Exact k-nearest-neighbour search in embedding space: the ranking the vote is built on.

A fast float32 engine (faiss on CPU, torch on CUDA, `augpe.embed.knn_device`) proposes a few extra
candidates, which are ranked in float64, ties to the lower id; a row whose candidates could be
incomplete (score gap within the float32 error) is searched again wider. CPU and GPU, and any
split of the query rows into batches or shards, give the same ids. Every path checks its ids
(`_valid_ids`): a -1 or a repeated id would break the vote's sensitivity bound.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal

import faiss
import numpy as np

__all__ = ["Engine", "NonFiniteEmbedding", "check_finite", "knn_search"]


class NonFiniteEmbedding(ValueError):
    """An embedding holds NaN or inf: faiss would answer id -1 and break the sensitivity bound."""


def check_finite(x: np.ndarray, what: str, rows: np.ndarray | None = None) -> None:
    """Refuse NaN / inf rows by position (never by content): faiss gives them id -1.

    `rows` maps x's rows to their index in the caller's matrix (x is often one gathered chunk).
    """
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        at = np.flatnonzero(bad)
        first = int(at[0]) if rows is None else int(rows[at[0]])
        raise NonFiniteEmbedding(
            f"{what}: {at.size} embedding row(s) hold NaN or inf (first at row {first}); "
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


# The exact ranking: a float32 engine proposes candidates, float64 decides.
_MARGIN = 4  # candidates beyond k that the engine returns for the float64 ranking
_GAP = 1e-4  # relative score gap below which a row's candidate set could be incomplete
_SUB = 1024  # query rows ranked at once (bounds the float64 gather to ~16 MB)


Engine = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
"""(float32 query rows, kk) -> (float32 scores, higher = nearer, sorted; int64 ids) (rows, kk)."""


def _engine(base: np.ndarray, distance: str, device: str) -> Engine:
    """Exact float32 top-kk search over `base`: faiss flat index on CPU, torch on CUDA."""
    if device != "cpu":
        from augpe.embed.knn_device import torch_candidates

        return torch_candidates(base, distance, device)
    index = (
        faiss.IndexFlatIP(base.shape[1])
        if distance == "cosine"
        else faiss.IndexFlatL2(base.shape[1])
    )
    index.add(_prepare(base, distance))
    sign = 1.0 if distance == "cosine" else -1.0  # L2: faiss returns distances, ascending

    def search(q: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
        d, ids = index.search(_prepare(q, distance), kk)
        return sign * d, ids

    return search


def _float64_scores(
    q: np.ndarray, base: np.ndarray, base_norm: np.ndarray, cand: np.ndarray, distance: str
) -> np.ndarray:
    """float64 scores (higher = nearer) of each row's candidates.

    Elementwise products summed along the last axis (numpy's fixed pairwise order), so a
    (query, candidate) pair gets the same bits wherever, and with whatever else, it is scored.
    """
    score = np.empty(cand.shape, dtype=np.float64)
    for s in range(0, cand.shape[0], _SUB):
        q64 = q[s : s + _SUB].astype(np.float64)[:, None, :]
        c = cand[s : s + _SUB]
        b = base[c].astype(np.float64)  # (rows, kk, d)
        if distance == "cosine":
            den = np.sqrt((q64 * q64).sum(axis=-1)) * base_norm[c]
            dot = (b * q64).sum(axis=-1)
            score[s : s + _SUB] = np.where(den > 0, dot / np.where(den > 0, den, 1.0), 0.0)
        else:
            diff = b - q64
            score[s : s + _SUB] = -(diff * diff).sum(axis=-1)
    return score


def _exact_topk(
    q: np.ndarray,
    base: np.ndarray,
    base_norm: np.ndarray,
    k: int,
    distance: str,
    engine: Engine,
) -> np.ndarray:
    """The k nearest rows of `base` for each row of `q`, ranked in float64, ties to the lower id.

    Why it is exact whatever the engine: a float32 score is within e <= 2.5e-5 * scale of the
    float64 one (384-dim dot products; scale 1 for cosine, (|q| + max|b|)^2 for L2); tol =
    _GAP * scale > 2e. (1) If the engine's first k+1 scores are more than tol apart from each
    other, its top k, in its order, is the float64 top k (every other row scores below the
    (k+1)-th): most rows stop there, with no float64 work. (2) Other rows are ranked in float64
    over the engine's kk candidates. If a true top-k row x were missing from them, every
    candidate would score >= x in float32, so the k-th and the last candidate would lie within 2e
    in float64: a gap above tol proves the set complete; rows without one are searched again with
    4x the candidates, up to the whole base (exact ties between duplicates end there).
    """
    n_base = base.shape[0]
    if distance == "cosine":
        tol = np.full(q.shape[0], _GAP)
    else:
        q_norm = np.sqrt(np.einsum("ij,ij->i", q, q, dtype=np.float64))
        tol = _GAP * (q_norm + base_norm.max()) ** 2
    m = min(n_base, k + 1)
    s32, cand = engine(q, m)
    cand = _valid_ids(np.asarray(cand, dtype=np.int64), n_base)
    out = cand[:, :k].copy()
    lead = np.asarray(s32, dtype=np.float64)
    clear = (lead[:, :-1] - lead[:, 1:] > tol[:, None]).all(axis=1)
    todo = np.flatnonzero(~clear)
    kk = min(n_base, k + max(k, _MARGIN))
    if todo.size:
        rows_cand = _valid_ids(np.asarray(engine(q[todo], kk)[1], dtype=np.int64), n_base)
    while todo.size:
        score = _float64_scores(q[todo], base, base_norm, rows_cand, distance)
        order = np.lexsort((rows_cand, -score), axis=-1)
        rows_cand = np.take_along_axis(rows_cand, order, axis=1)
        score = np.take_along_axis(score, order, axis=1)
        out[todo] = rows_cand[:, :k]
        if kk == n_base:
            break
        todo = todo[score[:, k - 1] - score[:, -1] <= tol[todo]]
        kk = min(n_base, kk * 4)
        if todo.size:
            rows_cand = _valid_ids(np.asarray(engine(q[todo], kk)[1], dtype=np.int64), n_base)
    return out


def knn_search(
    queries: np.ndarray,
    base: np.ndarray,
    k: int,
    distance: Literal["cosine", "l2"],
    chunk: int = 65536,
    rows: np.ndarray | None = None,
    device: str = "cpu",
) -> Iterator[tuple[int, np.ndarray]]:
    """Exact k-NN ids of each query row in `base`, streamed over query chunks (bounded memory).

    `rows` selects the query rows (one class's records); they are gathered one chunk at a time, so
    no copy of a whole class's embeddings is ever made (1M private rows: 1.4 GiB saved).
    `device` is 'cpu' (faiss) or 'cuda' (torch; see augpe.embed.knn_device.resolve_device for 'auto');
    both return the same ids (see `_exact_topk`), checked by `_valid_ids` on every path.
    """
    if k > base.shape[0]:
        raise ValueError(f"k={k} exceeds the {base.shape[0]} synthetic samples it votes among")
    check_finite(base, "synthetic embeddings")
    base = np.ascontiguousarray(base, dtype=np.float32)
    base_norm = np.concatenate(  # float64, per row in a fixed order (blocks bound the copy)
        [
            np.sqrt((base[s : s + 8192].astype(np.float64) ** 2).sum(axis=1))
            for s in range(0, len(base), 8192)
        ]
    )
    engine = _engine(base, distance, device)
    n = queries.shape[0] if rows is None else rows.size
    for start in range(0, n, chunk):
        at = (
            np.arange(start, min(start + chunk, n)) if rows is None else rows[start : start + chunk]
        )
        q = queries[start : start + chunk] if rows is None else queries[at]
        q = np.ascontiguousarray(q, dtype=np.float32)
        check_finite(q, "private embeddings", at)  # per chunk: no copy of the whole matrix
        ids = _exact_topk(q, base, base_norm, k, distance, engine)
        yield start, _valid_ids(ids, base.shape[0])
