"""The nearest-neighbour vote: the only place private data touches synthetic data.

Each private record gives 1/sqrt(k) to each of its k nearest synthetic samples *of its own
class* (or, in the cross-class vote, `label_bins`, of any class, in that sample's bin for the
record's class), so its vote vector has L2 norm exactly 1 (the sensitivity the noise is
calibrated for).
With user ids, every user's summed vote vector is rescaled to norm <= 1 instead (user-level DP).
The clean histogram returned here never leaves memory: only its noisy version is stored.

Two choices make the vote a function of the embeddings alone, whatever computes it:
- the k-NN ranking: a fast float32 engine (faiss on CPU, torch on CUDA) proposes a few extra
  candidates, which are ranked in float64, ties to the lower id; a row whose candidates could be
  incomplete (score gap within the float32 error) is searched again wider. CPU and GPU, and any
  split of the private rows into batches or shards, give the same ids.
- the sum: votes are tallied exactly (`VoteTally`, fixed point, integer adds), so any split of
  the private records into shards sums to the same bits; `histogram()` rounds once at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Literal

import faiss
import numpy as np


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
        from augpe.scale.knn import torch_candidates

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
    `device` is 'cpu' (faiss) or 'cuda' (torch; see augpe.scale.knn.resolve_device for 'auto');
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


class VoteTally:
    """Clean votes per bin, summed exactly: fixed point, 4 limbs of 32 bits, unit 2^-128.

    Every contribution (1/sqrt(k), or a user's normalised share) lies in (2^-76, 1] and is a
    float64, so it is an exact multiple of 2^-128; limbs are summed as int64. Integer addition is
    associative, so the tally of any split of the records (Ray shards) sums to the same bits as
    the tally of all of them, and `histogram()` rounds the exact total once (correctly rounded).
    Clean data: kept in memory, handed to the noise, never stored, logged or released.
    """

    LIMBS = 4
    __slots__ = ("limbs",)

    def __init__(self, limbs: np.ndarray) -> None:
        self.limbs = limbs  # int64 (n_bins, LIMBS); column j weighs 2^-32(j+1)

    @classmethod
    def zeros(cls, n_bins: int) -> VoteTally:
        return cls(np.zeros((n_bins, cls.LIMBS), dtype=np.int64))

    @staticmethod
    def _split(values: np.ndarray) -> np.ndarray:
        """Each value in [0, 1] as LIMBS exact 32-bit digits (int64 (n, LIMBS))."""
        x = np.asarray(values, dtype=np.float64).copy()
        if x.size and (x.min() < 0.0 or x.max() > 2.0):
            raise ValueError("vote contributions must lie in [0, 1]")
        out = np.empty((x.size, VoteTally.LIMBS), dtype=np.int64)
        for j in range(VoteTally.LIMBS):
            x *= 4294967296.0  # 2^32: exact
            digit = np.floor(x)
            out[:, j] = digit.astype(np.int64)
            x -= digit  # exact: the fractional part of a float is a float
        if x.any():
            raise RuntimeError("a vote contribution is below 2^-76: not exactly representable")
        return out

    @classmethod
    def of_counts(cls, counts: np.ndarray, w: float) -> VoteTally:
        """counts[b] votes of weight w each (record level)."""
        return cls(np.asarray(counts, dtype=np.int64)[:, None] * cls._split(np.array([w]))[0])

    @classmethod
    def of_values(cls, bins: np.ndarray, values: np.ndarray, n_bins: int) -> VoteTally:
        """Contribution values[i] to bin bins[i] (user level)."""
        limbs = np.zeros((n_bins, cls.LIMBS), dtype=np.int64)
        digits = cls._split(values)
        for j in range(cls.LIMBS):
            np.add.at(limbs[:, j], bins, digits[:, j])
        return cls(limbs)

    def __add__(self, other: VoteTally) -> VoteTally:
        if self.limbs.shape != other.limbs.shape:
            raise ValueError("tallies over different populations cannot be added")
        return VoteTally(self.limbs + other.limbs)

    @property
    def n_bins(self) -> int:
        return int(self.limbs.shape[0])

    def histogram(self) -> np.ndarray:
        """The float64 vote histogram: each bin's exact total, rounded once."""
        out = np.zeros(self.n_bins, dtype=np.float64)
        for b in np.flatnonzero(self.limbs.any(axis=1)):
            total = 0
            for digit in self.limbs[b].tolist():
                total = (total << 32) + digit
            out[b] = math.ldexp(float(total), -32 * self.LIMBS)  # int -> float rounds correctly
        return out


def vote_tally(
    private_emb: np.ndarray,
    private_class: np.ndarray,
    synthetic_emb: np.ndarray,
    synthetic_class: np.ndarray,
    k: int = 1,
    distance: Literal["cosine", "l2"] = "cosine",
    user_ids: np.ndarray | None = None,
    chunk: int = 65536,
    device: str = "cpu",
    label_bins: int = 0,
) -> VoteTally:
    """The clean votes of these private records as an exact tally (one bin per synthetic sample).

    With user ids, every user's records must all be in `private_emb` (a shard holds whole users).
    `label_bins` = C > 0 is the cross-class vote: every record votes among ALL candidates (class
    >= 0; -1 = no vote), into bin candidate * C + its own class, so the (candidate, voter class)
    histogram says both how many records a candidate is near and which label they carry. A record
    still adds 1/sqrt(k) to k distinct bins: the L2 sensitivity stays 1.
    """
    # The private rows are checked per chunk, inside the search (no copy of the whole matrix).
    check_finite(synthetic_emb, "synthetic embeddings")
    n_bins = synthetic_emb.shape[0] * max(label_bins, 1)
    counts = np.zeros(n_bins, dtype=np.int64)
    w = 1.0 / np.sqrt(k)
    rows: list[np.ndarray] = []  # (record index, bin) pairs, only kept for user-level votes
    bins_all: list[np.ndarray] = []
    for c in np.unique(private_class):
        if label_bins and not 0 <= c < label_bins:
            raise ValueError(f"private class id {c} is outside the {label_bins} label bins")
        priv_idx = np.flatnonzero(private_class == c)
        syn_idx = np.flatnonzero(synthetic_class >= 0 if label_bins else synthetic_class == c)
        if syn_idx.size == 0:
            continue  # every generation of this class failed: its records cast no vote this round
        # Fewer than k candidates (generations dropped): vote for all of them, still 1/sqrt(k)
        # each, so the record's vector has norm sqrt(n/k) < 1 and the sensitivity bound holds.
        k_c = min(k, syn_idx.size)
        for start, ids in knn_search(
            private_emb, synthetic_emb[syn_idx], k_c, distance, chunk, rows=priv_idx, device=device
        ):
            bins = syn_idx[ids]  # (n, k) global bin ids, distinct within a row
            if label_bins:
                bins = bins * label_bins + c
            if user_ids is None:
                counts += np.bincount(bins.ravel(), minlength=n_bins)
            else:
                rec = np.repeat(priv_idx[start : start + ids.shape[0]], k_c)
                rows.append(rec)
                bins_all.append(bins.ravel())
    if user_ids is None:
        return VoteTally.of_counts(counts, w)
    if not rows:
        return VoteTally.zeros(n_bins)
    return _user_level(np.concatenate(rows), np.concatenate(bins_all), user_ids, w, n_bins)


def vote_histogram(
    private_emb: np.ndarray,
    private_class: np.ndarray,
    synthetic_emb: np.ndarray,
    synthetic_class: np.ndarray,
    k: int = 1,
    distance: Literal["cosine", "l2"] = "cosine",
    user_ids: np.ndarray | None = None,
    chunk: int = 65536,
    device: str = "cpu",
    label_bins: int = 0,
) -> np.ndarray:
    """Clean vote counts, one bin per synthetic sample (all classes concatenated); with
    `label_bins` = C, C bins per sample (see `vote_tally`), flat, sample-major."""
    return vote_tally(
        private_emb,
        private_class,
        synthetic_emb,
        synthetic_class,
        k,
        distance,
        user_ids,
        chunk,
        device,
        label_bins,
    ).histogram()


def _user_level(
    records: np.ndarray, bins: np.ndarray, user_ids: np.ndarray, w: float, n_bins: int
) -> VoteTally:
    """Sum each user's votes, then scale every user's vector to L2 norm 1.

    A user's share depends on that user's (bin, count) pairs alone, in a fixed order, so it is
    the same bits whether computed over all records or over a shard that holds the whole user.
    """
    users = np.asarray(user_ids)[records]
    pairs, counts = np.unique(np.stack([users, bins]), axis=1, return_counts=True)
    vals = counts * w
    _, inv = np.unique(pairs[0], return_inverse=True)
    norms = np.sqrt(np.bincount(inv, weights=vals**2))
    return VoteTally.of_values(pairs[1], vals / norms[inv], n_bins)


def per_user_weights(user_ids: np.ndarray) -> np.ndarray:
    """Each record's weight 1/(its user's record count): a user's records sum to 1, so a user
    whose records each add a unit vector adds L2 norm <= 1 in all (triangle inequality)."""
    _, inv, counts = np.unique(np.asarray(user_ids), return_inverse=True, return_counts=True)
    return 1.0 / counts[inv.reshape(-1)]


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


def unit_count(n_records: int, user_ids: np.ndarray | None = None) -> np.ndarray:
    """The clean number of protected units (records, or users), one bin, sensitivity 1.

    Released only with noise (the `record_count` release), to derive delta when none is set.
    """
    n = n_records if user_ids is None else np.unique(np.asarray(user_ids)).size
    return np.array([float(n)])
