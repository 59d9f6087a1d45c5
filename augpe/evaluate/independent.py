"""The independent tier ("bow"): bag-of-words features that no step of the pipeline used.

The fast tier's probe reads the same sentence embeddings in which the private records vote, the
selection keeps texts, and (with `privacy.centroids`) the DP class centroids label the corpus:
a corpus shaped in that space can score well there without being better text. This learner
sees only words: TF-IDF of word 1- and 2-grams (sublinear tf, min_df 1), fitted on the training
corpus alone, and a logistic regression with balanced class weights and C = 1. Every setting is
fixed; nothing is chosen on the real test split (or on anything else).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from augpe.evaluate.scores import auc, check_weights, degenerate, label_report, scores

__all__ = ["BOW", "BOW_SETTINGS", "analyse", "bow_classifier"]

BOW = "bow"
# Fixed, not tuned: the vectoriser's and the classifier's settings, as eval.json records them.
BOW_SETTINGS: dict[str, Any] = {
    "features": "TF-IDF of word 1-2-grams, sublinear tf, min_df 1, fitted on the training corpus",
    "ngram_range": [1, 2],
    "sublinear_tf": True,
    "min_df": 1,
    "classifier": "logistic regression",
    "class_weight": "balanced",
    "C": 1.0,
    "max_iter": 1000,
}


def _vectoriser(analysed: bool) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    if analysed:  # the documents are analyse()'s n-gram lists already
        return TfidfVectorizer(analyzer=_as_is, sublinear_tf=True, min_df=1, dtype=np.float64)
    return TfidfVectorizer(
        ngram_range=(1, 2), sublinear_tf=True, min_df=1, lowercase=True, dtype=np.float64
    )


def _as_is(doc: list[str]) -> list[str]:
    return doc


def analyse(texts: Sequence[str]) -> list[list[str]]:
    """Each text as the learner's vectoriser reads it: its lowercased word 1- and 2-grams.

    `bow_classifier(..., analysed=True)` on these gives the same result as on the texts; the
    real-data learning curve analyses the real text once instead of once per draw."""
    analyser = _vectoriser(False).build_analyzer()
    return [analyser(t) for t in texts]


def bow_classifier(
    train_texts: Sequence[Any],
    train_y: Sequence[str],
    test_texts: Sequence[Any],
    test_y: Sequence[str],
    weights: Sequence[float] | None = None,
    analysed: bool = False,
) -> dict[str, Any]:
    """Train the bag-of-words learner on one corpus, score it on the real test split.

    `weights`: one non-negative weight per training text (a corpus's `weight` column), used in
    the fit as the embedding probe uses them. `analysed`: the texts are `analyse()`'s n-gram
    lists. Returns the fields of the other tiers (accuracy, macro_f1, balanced_accuracy, auc,
    label counts, notes) with tier "bow"."""
    from sklearn.linear_model import LogisticRegression

    if len(train_y) == 0:
        raise ValueError("bow_classifier: empty training set")
    base = label_report(train_y, test_y)
    base["tier"] = BOW
    if (deg := degenerate(train_y, test_y, base)) is not None:
        return deg
    t0 = time.perf_counter()
    w = check_weights(weights, len(train_y))
    vec = _vectoriser(analysed)
    try:
        X = vec.fit_transform(list(train_texts))
    except ValueError:  # no word of two or more characters in the whole training corpus
        only = Counter(train_y).most_common(1)[0][0]
        base.setdefault("notes", []).append(
            f"the training corpus has no words to count; every test text is predicted '{only}'"
        )
        return {**base, **scores([only] * len(test_y), test_y), "auc": None}
    clf = LogisticRegression(
        class_weight=BOW_SETTINGS["class_weight"],
        C=BOW_SETTINGS["C"],
        max_iter=BOW_SETTINGS["max_iter"],
    )
    clf.fit(X, list(train_y), sample_weight=w)
    Xt = vec.transform(list(test_texts))
    pred = clf.predict(Xt).tolist()
    return {
        **base,
        **scores(pred, test_y),
        "auc": auc(clf, Xt, test_y),
        "vocabulary": len(vec.vocabulary_),
        "seconds": round(time.perf_counter() - t0, 3),
    }
