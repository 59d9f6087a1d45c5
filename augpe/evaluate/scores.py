"""The scores every downstream learner reports, and the floors they are read against.

Each learner (embedding probe, bag-of-words, fine-tuned encoder) reports accuracy, macro-F1 and
balanced accuracy on the real test split. Balanced accuracy is the mean recall over the classes
of the real test split: a constant answer scores 1 / (number of test classes) whatever the class
balance, so it is the number the worth-n and gap-closed figures are computed on.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "auc",
    "balanced_accuracy",
    "check_weights",
    "constant_balanced_accuracy",
    "degenerate",
    "label_report",
    "majority_accuracy",
    "scores",
]


def majority_accuracy(test_y: Sequence[str]) -> float:
    """Accuracy of always answering the most frequent real test label (the floor to beat)."""
    if not test_y:
        return 0.0
    return Counter(test_y).most_common(1)[0][1] / len(test_y)


def constant_balanced_accuracy(test_y: Sequence[str]) -> float:
    """Balanced accuracy of any constant answer: 1 / (number of test classes), 0.5 for two."""
    k = len(set(test_y))
    return 1.0 / k if k else 0.0


def balanced_accuracy(pred: Sequence[str], test_y: Sequence[str]) -> float:
    """sklearn's balanced accuracy: the mean over the test split's classes of their recall.

    A predicted class that never occurs in the test split is an error for the texts it was given
    to and is not a class of the mean (sklearn warns about it; the warning is expected here)."""
    from sklearn.metrics import balanced_accuracy_score

    if not test_y:
        return 0.0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(balanced_accuracy_score(list(test_y), list(pred)))


def scores(pred: Sequence[str], test_y: Sequence[str]) -> dict[str, float]:
    """Accuracy, macro-F1 (over the test labels) and balanced accuracy of `pred`."""
    from sklearn.metrics import f1_score

    acc = float(np.mean([p == y for p, y in zip(pred, test_y)])) if test_y else 0.0
    labels = sorted(set(test_y))
    f1 = float(f1_score(list(test_y), list(pred), labels=labels, average="macro", zero_division=0))
    return {
        "accuracy": round(acc, 5),
        "macro_f1": round(f1, 5),
        "balanced_accuracy": round(balanced_accuracy(pred, test_y), 5),
    }


def label_report(train_y: Sequence[str], test_y: Sequence[str]) -> dict[str, Any]:
    """Label counts, the constant floors, and the test labels a training corpus never shows."""
    seen = set(train_y)
    unseen = Counter(y for y in test_y if y not in seen)
    out: dict[str, Any] = {
        "n_train": len(train_y),
        "n_test": len(test_y),
        "train_label_counts": dict(sorted(Counter(train_y).items())),
        "majority_test_accuracy": round(majority_accuracy(test_y), 5),
        "constant_balanced_accuracy": round(constant_balanced_accuracy(test_y), 5),
    }
    if unseen:
        out["unseen_test_labels"] = dict(sorted(unseen.items()))
        out.setdefault("notes", []).append(
            f"{sum(unseen.values())} test texts have labels never seen in training "
            f"({', '.join(sorted(unseen))}); they count as errors"
        )
    return out


def auc(clf: Any, X: Any, test_y: Sequence[str]) -> float | None:
    """Macro one-vs-rest ROC AUC of a classifier's probabilities: how well it ranks the real test
    texts, whatever its decision threshold (the threshold is what a small corpus gets most wrong).
    None when a test label was never seen in training."""
    from sklearn.metrics import roc_auc_score

    classes = list(clf.classes_)
    if not set(test_y) <= set(classes) or len(set(test_y)) < 2:
        return None
    proba = clf.predict_proba(X)
    if len(classes) == 2:
        return round(float(roc_auc_score([y == classes[1] for y in test_y], proba[:, 1])), 5)
    y = np.array([classes.index(t) for t in test_y])
    present = sorted(set(y.tolist()))
    aucs = [float(roc_auc_score(y == c, proba[:, c])) for c in present]
    return round(float(np.mean(aucs)), 5)


def degenerate(
    train_y: Sequence[str], test_y: Sequence[str], base: dict[str, Any]
) -> dict[str, Any] | None:
    """The result of a training corpus with a single class (that class predicted everywhere);
    None when it has two or more."""
    if len(set(train_y)) > 1:
        return None
    only = train_y[0]
    base["degenerate"] = (
        f"the training corpus has a single class ('{only}') in this column: "
        "no classifier can be trained; every test text is predicted as that class"
    )
    return {**base, **scores([only] * len(test_y), test_y)}


def check_weights(weights: Sequence[float] | None, n: int) -> np.ndarray | None:
    """Training weights as an array (None stays None); ValueError unless n finite numbers >= 0,
    not all zero."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"training weights must be {n} finite non-negative numbers, not all zero")
    return w
