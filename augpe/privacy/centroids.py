"""DP class centroids: where each class's private records sit in embedding space, as one noisy
release, so the released corpus can be labelled by a nearest-centroid classifier.

Why: the vote labels a synthetic text by the private records *nearest* to it, a local (k-NN)
label. When a class boundary is a direction in embedding space rather than a set of clusters
(sentiment, "5 stars or not"), local labels are noisy even without noise. The centroids see the
whole class: cosine to each class's sum of private embeddings is a linear classifier.
Two labellers read the release: `nearest_centroid` (each text its nearest noisy centroid) and
`ranked_centroid` (each class keeps its share of the texts under the run's class sizes; the
centroids decide which texts those are).

Sensitivity. Each record's embedding is scaled to unit L2 norm and added to its own class's row
of a (classes x dim) matrix: one record moves the matrix by exactly 1 in L2 (Frobenius). User
level: each of a user's records is weighted 1/(its user's record count), so a user's whole
contribution has L2 norm <= 1 (triangle inequality) wherever its records fall. One Gaussian
release covers all classes. Labelling synthetic texts with the noisy matrix is post-processing.
"""

from __future__ import annotations

import numpy as np

from augpe.privacy.vote import check_finite, per_user_weights

__all__ = [
    "centroid_labels",
    "class_embedding_sums",
    "nearest_centroid",
    "ranked_centroid",
    "shares_of",
]

ASSIGN_BLOCK = 4000  # texts per exact assignment: its cost matrix is block x block floats


def class_embedding_sums(
    private_emb: np.ndarray,
    class_ids: np.ndarray,
    num_classes: int,
    user_ids: np.ndarray | None = None,
) -> np.ndarray:
    """CLEAN (classes x dim) sums of unit-normalised private embeddings, L2 sensitivity 1.

    Released only through the mechanism (the `centroids` release), never read otherwise."""
    x = np.asarray(private_emb, dtype=np.float64)
    check_finite(x, "private embeddings")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)  # a zero vector adds 0
    if user_ids is not None:
        unit = unit * per_user_weights(user_ids)[:, None]
    out = np.zeros((num_classes, x.shape[1]), dtype=np.float64)
    np.add.at(out, np.asarray(class_ids), unit)
    return out


def nearest_centroid(synthetic_emb: np.ndarray, noisy_sums: np.ndarray) -> np.ndarray:
    """Post-processing: each synthetic text's class, the noisy centroid it is closest to in cosine.

    Cosine to the noisy *sum* needs no (noisy) class size: a small class's direction is noisier,
    not shrunk."""
    return np.argmax(_cosines(synthetic_emb, noisy_sums), axis=1)


def ranked_centroid(
    synthetic_emb: np.ndarray, noisy_sums: np.ndarray, sizes: np.ndarray
) -> np.ndarray:
    """Post-processing: class c gets exactly `sizes[c]` of the texts, those whose cosine to its
    noisy centroid the best assignment gives it (maximum total cosine under the sizes).

    Why: the noisy centroids of a thin class boundary (sentiment) are close; nearest-centroid
    then pours most texts into one class and a learner trained on the corpus sees few of the
    other. Fixing the sizes from the run's class sizes (uniform, public or DP class counts: no
    private data) and letting the centroids rank the texts keeps every class taught. With two
    classes this is: the sizes[1] texts with the largest cos(x, c1) - cos(x, c0) are class 1.
    Exact by a linear assignment; above `ASSIGN_BLOCK` texts, in interleaved blocks, each exact."""
    from scipy.optimize import linear_sum_assignment

    cos = _cosines(synthetic_emb, noisy_sums)
    sizes = np.asarray(sizes, dtype=int)
    if sizes.shape != (cos.shape[1],) or (sizes < 0).any() or sizes.sum() != cos.shape[0]:
        raise ValueError(
            f"ranked_centroid: sizes {sizes.tolist()} must give each of the {cos.shape[1]} "
            f"classes a count >= 0, summing to the {cos.shape[0]} texts"
        )
    slots = np.repeat(np.arange(len(sizes)), sizes)  # one column per place in a class
    out = np.empty(cos.shape[0], dtype=int)
    blocks = max(1, -(-cos.shape[0] // ASSIGN_BLOCK))
    for b in range(blocks):  # rows and slots taken with the same stride: equal numbers
        rows, cols = np.arange(b, cos.shape[0], blocks), slots[b::blocks]
        r, c = linear_sum_assignment(cos[np.ix_(rows, cols)], maximize=True)
        out[rows[r]] = cols[c]
    return out


def centroid_labels(
    how: str, synthetic_emb: np.ndarray, noisy_sums: np.ndarray, class_sizes: np.ndarray
) -> np.ndarray:
    """The corpus's labels from the centroid release (`privacy.centroid_labels`): `nearest`, or
    `ranked`, each class keeping its share of the texts under the run's class sizes (uniform,
    public or DP counts: what the run asked the model to write, not the vote's labels)."""
    if how == "nearest":
        return nearest_centroid(synthetic_emb, noisy_sums)
    if how == "ranked":
        return ranked_centroid(
            synthetic_emb, noisy_sums, shares_of(class_sizes, len(synthetic_emb))
        )
    raise ValueError(f"privacy.centroid_labels: {how!r} is not nearest or ranked")


def shares_of(class_sizes: np.ndarray, n: int) -> np.ndarray:
    """`n` split in proportion to `class_sizes` (largest remainders; ties to the lower class)."""
    w = np.maximum(np.asarray(class_sizes, dtype=np.float64), 0.0)
    if w.sum() <= 0:
        w = np.ones_like(w)
    exact = w / w.sum() * n
    out = np.floor(exact).astype(int)
    order = np.argsort(-(exact - out), kind="stable")
    out[order[: n - int(out.sum())]] += 1
    return out


def _cosines(synthetic_emb: np.ndarray, noisy_sums: np.ndarray) -> np.ndarray:
    s = np.asarray(noisy_sums, dtype=np.float64)
    s = s / np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-12)
    e = np.asarray(synthetic_emb, dtype=np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    return e @ s.T
