"""Canaries: an in-distribution prefix from a held-out private record, then a high-entropy secret;
each is put into the audit's private data with probability 1/2 (the coin the attacker guesses)."""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass

import numpy as np

from augpe.errors import ConfigError
from augpe.records.data import PrivateData

__all__ = ["Canary", "make_canaries", "tokens"]


@dataclass(frozen=True)
class Canary:
    """One audit record. `included` is the coin flip the attacker has to guess."""

    id: str
    prefix: str
    secret: str
    class_name: str
    included: bool

    @property
    def text(self) -> str:
        return f"{self.prefix} {self.secret}"


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokens(text: str) -> list[str]:
    """Lowercased word tokens, as the n-gram score reads them."""
    return _WORD.findall(text.lower())


def make_canaries(
    data: PrivateData,
    m: int,
    rng: np.random.Generator,
    prefix_words: int = 12,
    secret_words: int = 5,
    code_chars: int = 8,
) -> tuple[list[Canary], np.ndarray]:
    """m canaries and the indices of the private records held out to give their prefixes.

    Prefix: the first `prefix_words` words of a random private record (in distribution; that
    record is removed from the audit data, so the prefix is not duplicated). The canary's class
    is that record's class, so classes are drawn with the data's class frequencies. Secret:
    `secret_words` random words from the data's vocabulary plus a random alphanumeric code:
    about 5 * log2(V) + 41 bits, so a secret is never produced by chance.
    """
    n = len(data)
    counts = np.bincount(data.class_ids, minlength=data.num_classes)
    if m < 2:
        raise ConfigError(f"audit: need at least 2 canaries, got {m}")
    if m > n - data.num_classes:
        raise ConfigError(
            f"audit: {m} canaries need more than the {n} private records to take prefixes from"
        )
    # Hold out records at random, keeping at least one record per class in the audit data.
    held: list[int] = []
    left = counts.copy()
    for i in rng.permutation(n):
        c = int(data.class_ids[i])
        if left[c] > 1:
            held.append(int(i))
            left[c] -= 1
            if len(held) == m:
                break
    if len(held) < m:
        raise ConfigError(f"audit: cannot hold out {m} records and keep every class")
    vocab_counts = Counter(
        t for text in data.texts for t in tokens(text) if t.isalpha() and 4 <= len(t) <= 10
    )
    vocab = (
        sorted(w for w, c in vocab_counts.items() if c >= 2) or sorted(vocab_counts) or ["canary"]
    )
    alphabet = string.ascii_uppercase + string.digits
    include = rng.random(m) < 0.5
    out = []
    for j, i in enumerate(held):
        words = data.texts[i].split()
        prefix = " ".join(words[:prefix_words]).rstrip(".,;:!?")
        secret_ws = [vocab[int(x)] for x in rng.integers(len(vocab), size=secret_words)]
        code = "".join(alphabet[int(x)] for x in rng.integers(len(alphabet), size=code_chars))
        secret = " ".join(secret_ws) + f" {code}."
        out.append(
            Canary(
                f"canary-{j:04d}",
                prefix,
                secret,
                data.class_names[int(data.class_ids[i])],
                bool(include[j]),
            )
        )
    return out, np.asarray(held, dtype=np.int64)
