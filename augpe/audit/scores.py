"""What an attacker reads off the released corpus: each canary's nearest-neighbour cosine to the
synthetic samples, and how much a word n-gram model of the corpus prefers the canary's secret."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from augpe.audit.canaries import Canary, tokens
from augpe.embed import Embedder

__all__ = ["NgramModel", "ngram_secret_scores", "nn_cosine_scores"]


def nn_cosine_scores(
    embedder: Embedder, canaries: Sequence[str], synthetic: Sequence[str]
) -> np.ndarray:
    """Cosine similarity of each canary to its nearest synthetic sample."""
    if not synthetic:
        return np.zeros(len(canaries))
    a = np.asarray(embedder.encode(list(canaries), desc="embed canaries"), dtype=np.float64)
    b = np.asarray(embedder.encode(list(synthetic), desc="embed synthetic"), dtype=np.float64)
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    best = np.full(a.shape[0], -1.0)
    for start in range(0, b.shape[0], 4096):
        best = np.maximum(best, (a @ b[start : start + 4096].T).max(axis=1))
    return best


class NgramModel:
    """Interpolated Witten-Bell word n-gram model (add-one unigram base, one unknown token).

    Witten-Bell needs no tuned constant: a context that was followed by many different words
    gives more weight to the lower order, which is what a corpus of paraphrases looks like.
    """

    BOS = "<s>"

    def __init__(self, texts: Sequence[str], n: int = 3) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = n
        self.unigram: Counter[str] = Counter()
        self.follow: list[dict[tuple[str, ...], Counter[str]]] = [
            defaultdict(Counter) for _ in range(n)
        ]
        for text in texts:
            toks = [self.BOS] * (n - 1) + tokens(text)
            for i in range(n - 1, len(toks)):
                w = toks[i]
                self.unigram[w] += 1
                for order in range(1, n):
                    self.follow[order][tuple(toks[i - order : i])][w] += 1
        self.total = sum(self.unigram.values())
        self.vocab = len(self.unigram) + 1  # + one unknown word

    def unigram_logprob(self, w: str) -> float:
        return math.log((self.unigram.get(w, 0) + 1) / (self.total + self.vocab))

    def logprob(self, w: str, context: Sequence[str]) -> float:
        ctx = ([self.BOS] * (self.n - 1) + list(context))[-(self.n - 1) :] if self.n > 1 else []
        p = math.exp(self.unigram_logprob(w))
        for order in range(1, self.n):
            h = tuple(ctx[len(ctx) - order :])
            follow = self.follow[order].get(h)
            if not follow:
                continue  # unseen context: the lower-order estimate stands
            c_h, types = sum(follow.values()), len(follow)
            p = (follow.get(w, 0) + types * p) / (c_h + types)
        return math.log(p)


def ngram_secret_scores(model: NgramModel, canaries: Sequence[Canary]) -> np.ndarray:
    """Mean over the secret's tokens of log P_ngram(w | context) - log P_unigram(w).

    The unigram baseline cancels how common each random secret word is; what is left is how
    much the corpus has seen these words *in this order*, which only a leak explains.
    """
    out = np.zeros(len(canaries))
    for j, c in enumerate(canaries):
        ctx = tokens(c.prefix)
        secret = tokens(c.secret)
        total = 0.0
        for w in secret:
            total += model.logprob(w, ctx) - model.unigram_logprob(w)
            ctx.append(w)
        out[j] = total / max(1, len(secret))
    return out
