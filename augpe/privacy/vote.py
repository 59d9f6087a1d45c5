"""The nearest-neighbour vote: the only place private data touches synthetic data.

Each private record gives 1/sqrt(k) to each of its k nearest synthetic samples *of its own
class* (or, in the cross-class vote, `label_bins`, of any class, in that sample's bin for the
record's class), so its vote vector has L2 norm exactly 1 (the sensitivity the noise is
calibrated for).
With user ids, every user's summed vote vector is rescaled to norm <= 1 instead (user-level DP).
The clean histogram returned here never leaves memory: only its noisy version is stored.

Two choices make the vote a function of the embeddings alone, whatever computes it:
- the k-NN ranking (`augpe.embed.knn`): exact, ties to the lower id, the same ids on CPU and GPU
  and for any split of the private rows into batches or shards.
- the sum: votes are tallied exactly (`VoteTally`, fixed point, integer adds), so any split of
  the private records into shards sums to the same bits; `histogram()` rounds once at the end.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from augpe.embed.knn import check_finite, knn_search


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
        if x.size and (x.min() < 0.0 or x.max() > 1.0):
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
