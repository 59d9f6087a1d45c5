"""Fast, deterministic stand-ins for the LLM and the embedder, shared by the PE tests.

`FakeLLM` answers RANDOM API requests from a public pool (or with made-up sentences) and VARIATION
API requests by changing a word or two of the parent it finds in the prompt, so a near-duplicate
in the pool survives the iterations: what ends up in the corpus is decided by the DP selection
alone. `HashEmbedder` is a signed hashed bag of words: texts that share words are close, and it
needs no model. Neither ever sees a private record (the pipeline never shows them one).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from augpe.config import Config, parse_config
from augpe.llm.base import BaseLLM, Generation, GenerationRequest, Usage

__all__ = [
    "CLASSES",
    "FILLER_WORDS",
    "FakeLLM",
    "HashEmbedder",
    "class_text",
    "near_duplicate",
    "private_rows",
    "public_pool",
    "random_sentence",
    "small_config",
    "write_jsonl",
]

FILLER_WORDS = [
    *("really", "quite", "very", "truly", "rather", "simply", "fairly", "honestly", "surely"),
    *("plainly", "good", "nice", "fine", "okay", "decent", "solid", "pleasant", "tasty", "fresh"),
    *("sweet", "crisp", "mild", "product", "item", "order", "package", "snack", "drink", "meal"),
    *("flavor", "price", "value", "taste"),
]


def random_sentence(
    rng: np.random.Generator, words: int = 14, vocab: Sequence[str] = FILLER_WORDS
) -> str:
    """A made-up sentence of `words` words drawn from `vocab`."""
    picks = rng.integers(len(vocab), size=words)
    return " ".join(vocab[i] for i in picks).capitalize() + "."


def _stable_hash(token: str, salt: int) -> int:
    return zlib.crc32(f"{salt}:{token}".encode())


class HashEmbedder:
    """Signed feature hashing of lowercased word tokens: deterministic, no model, cosine-friendly."""

    def __init__(self, dim: int = 64, name: str | None = None) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = dim
        self.name = name or f"hash-bow-{dim}"
        self.calls: list[tuple[str, int]] = []  # (desc, number of texts): what was embedded

    def encode(self, texts: Sequence[str], desc: str = "") -> np.ndarray:
        self.calls.append((desc, len(texts)))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for tok in re.findall(r"\w+", text.lower()):
                out[row, _stable_hash(tok, 0) % self.dim] += (
                    1.0 if _stable_hash(tok, 1) & 1 else -1.0
                )
            if not out[row].any():  # an all-zero row has no cosine: give it a fixed direction
                out[row, 0] = 1.0
        return out


class FakeLLM(BaseLLM):
    """An `augpe.llm.base.LLM` that needs no model.

    pool: the public texts the RANDOM API answers with, in order (a counter cycles through them,
      so a run that asks for at least len(pool) samples sees every one). A mapping
      {label text: texts} answers each request from the pool whose key appears in its prompt
      (the class description), so a pool text can be tied to a class. None: made-up sentences.
    edits: words replaced per variation (at least 1, so a variation is never an echo).
    fail_every: every n-th request comes back failed (text=None), to exercise retries.
    """

    def __init__(
        self,
        pool: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
        *,
        edits: int = 1,
        fail_every: int = 0,
        seed: int = 0,
        name: str = "fake-llm",
    ) -> None:
        if isinstance(pool, Mapping):
            self._pools: dict[str, list[str]] = {str(k): list(v) for k, v in pool.items()}
        elif pool is not None:
            self._pools = {"": list(pool)}
        else:
            self._pools = {}
        if any(not texts for texts in self._pools.values()):
            raise ValueError("FakeLLM: every pool must hold at least one text")
        self._next = dict.fromkeys(self._pools, 0)
        self.edits = max(1, edits)
        self.fail_every = fail_every
        self.seed = seed
        self.name = name
        self.usage = Usage()
        self.prompts: list[str] = []  # every user message it was sent (tests read them)
        self._known: dict[str, str] = {}  # whitespace-normalised text -> text it has produced
        for texts in self._pools.values():
            for t in texts:
                self._remember(t)

    # ---- the LLM protocol ----------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest], desc: str = "") -> list[Generation]:
        out: list[Generation] = []
        for req in requests:
            user = req.messages[-1]["content"]
            self.prompts.append(user)
            if self.fail_every and self.usage.requests % self.fail_every == self.fail_every - 1:
                g = Generation(text=None, model=self.name, error="injected failure")
            else:
                parent = self._parent_in(user)
                rng = np.random.default_rng([self.seed, req.seed])
                text = self._vary(parent, rng) if parent is not None else self._random(user, rng)
                self._remember(text)
                g = Generation(
                    text=text,
                    prompt_tokens=len(user.split()),
                    completion_tokens=len(text.split()),
                    finish_reason="stop",
                    model=self.name,
                )
            self.usage.add(g)
            out.append(g)
        return out

    def close(self) -> None:
        pass

    # ---- internals -------------------------------------------------------------------------
    def _remember(self, text: str) -> None:
        self._known.setdefault(" ".join(text.split()), text)

    def _parent_in(self, user: str) -> str | None:
        """The synthetic text a VARIATION prompt carries (its last line), or None (RANDOM API)."""
        last = " ".join(user.rsplit("\n", 1)[-1].split())
        if last in self._known:
            return self._known[last]
        if "_" in last.split():  # fill-in-the-blanks: match the unmasked words
            masked = last.split()
            for norm, text in self._known.items():
                toks = norm.split()
                if len(toks) == len(masked) and all(m in ("_", t) for m, t in zip(masked, toks)):
                    return text
        return None

    def _random(self, user: str, rng: np.random.Generator) -> str:
        if not self._pools:
            return random_sentence(rng, int(rng.integers(10, 20)))
        keys = [k for k in self._pools if k and k in user]
        key = max(keys, key=len) if keys else ("" if "" in self._pools else next(iter(self._pools)))
        texts = self._pools[key]
        i = self._next[key]
        self._next[key] = i + 1
        return texts[i % len(texts)]

    def _vary(self, parent: str, rng: np.random.Generator) -> str:
        toks = parent.split()
        for _ in range(self.edits):
            pos = int(rng.integers(len(toks)))
            choices = [w for w in FILLER_WORDS if w != toks[pos].lower()]
            toks[pos] = choices[int(rng.integers(len(choices)))]
        text = " ".join(toks)
        if " ".join(text.lower().split()) == " ".join(parent.lower().split()):
            text += " " + FILLER_WORDS[int(rng.integers(len(FILLER_WORDS)))]
        return text


# ---- a small two-class private dataset and a public pool in the same style -------------------
CLASSES = ("posclass", "negclass")
"""Class names no prompt template contains, so FakeLLM can tell them apart in a prompt."""


def _vocab(seed: int, n: int) -> list[str]:
    rng = np.random.default_rng(seed)
    syll = [
        *("ba", "ko", "ri", "ne", "su", "ta", "lo", "mi"),
        *("da", "ve", "gu", "pe", "zo", "hi", "fa", "ju"),
    ]
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(syll[i] for i in rng.integers(len(syll), size=int(rng.integers(2, 4)))))
    return sorted(words)


VOCAB = {c: _vocab(i + 11, 150) for i, c in enumerate(CLASSES)}
SHARED_VOCAB = _vocab(7, 60)


def class_text(cls: str, rng: np.random.Generator, words: int = 16) -> str:
    """A sentence in the style of class `cls`: 2/3 class words, 1/3 shared words."""
    own, shared = VOCAB[cls], SHARED_VOCAB
    toks = [
        own[int(rng.integers(len(own)))]
        if rng.random() < 2 / 3
        else shared[int(rng.integers(len(shared)))]
        for _ in range(words)
    ]
    return " ".join(toks).capitalize() + "."


def private_rows(
    n: int, seed: int = 0, users: int | None = None, like: Mapping[str, Sequence[str]] | None = None
) -> list[dict[str, str]]:
    """n private records {text, label[, user]}, classes alternating. With `like` (a public pool),
    record i of a class is a near-duplicate of the i-th pool text of that class: public data that
    resembles the private data, as PE assumes."""
    rng = np.random.default_rng([seed, 1])
    rows = []
    for i in range(n):
        cls = CLASSES[i % 2]
        text = near_duplicate(like[cls][i // 2], rng) if like is not None else class_text(cls, rng)
        row = {"text": text, "label": cls}
        if users:
            row["user"] = f"u{int(rng.integers(users))}"
        rows.append(row)
    return rows


def public_pool(n_per_class: int, seed: int = 1) -> dict[str, list[str]]:
    """Public texts in the style of each class (disjoint from any private record)."""
    rng = np.random.default_rng([seed, 2])
    return {c: [class_text(c, rng) for _ in range(n_per_class)] for c in CLASSES}


def near_duplicate(text: str, rng: np.random.Generator) -> str:
    """`text` with one word replaced: what a generator that has seen it might write."""
    toks = text.split()
    pos = int(rng.integers(len(toks)))
    toks[pos] = FILLER_WORDS[int(rng.integers(len(FILLER_WORDS)))]
    return " ".join(toks)


def write_jsonl(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def small_config(
    data_path: Path,
    out_dir: Path,
    epsilon: float = 2.0,
    *,
    label_columns: Sequence[str] = ("label",),
    user_column: str | None = None,
    **sections: Mapping[str, object],
) -> Config:
    """A config for a seconds-long run with FakeLLM / HashEmbedder; `sections` update the
    defaults section by section, e.g. pe={"iterations": 3}."""
    raw: dict[str, dict[str, object]] = {
        "data": {
            "path": str(data_path),
            "label_columns": list(label_columns),
            "user_column": user_column,
        },
        "privacy": {"epsilon": epsilon, "noise_seed": 918273645546372819, "class_counts": "dp"},
        "generation": {"prompts": "generic"},
        "pe": {"iterations": 2, "samples": 40, "variations": 2},
        "output": {"dir": str(out_dir)},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return parse_config(raw)
