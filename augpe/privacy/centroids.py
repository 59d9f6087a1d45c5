"""DP class centroids: where each class's private records sit in embedding space, as one noisy
release, so the released corpus can be labelled by a nearest-centroid classifier.

Why: the vote labels a synthetic text by the private records *nearest* to it, a local (k-NN)
label. When a class boundary is a direction in embedding space rather than a set of clusters
(sentiment, "5 stars or not"), local labels are noisy even without noise. The centroids see the
whole class: cosine to each class's sum of private embeddings is a linear classifier.

Sensitivity. Each record's embedding is scaled to unit L2 norm and added to its own class's row
of a (classes x dim) matrix: one record moves the matrix by exactly 1 in L2 (Frobenius). User
level: each of a user's records is weighted 1/(its user's record count), so a user's whole
contribution has L2 norm <= 1 (triangle inequality) wherever its records fall. One Gaussian
release covers all classes. Labelling synthetic texts with the noisy matrix is post-processing.
"""

from __future__ import annotations

import numpy as np

from augpe.privacy.vote import check_finite, per_user_weights

__all__ = ["class_embedding_sums", "nearest_centroid"]


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
    s = np.asarray(noisy_sums, dtype=np.float64)
    s = s / np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-12)
    e = np.asarray(synthetic_emb, dtype=np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    return np.argmax(e @ s.T, axis=1)
