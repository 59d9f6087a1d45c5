"""Stand-ins for the evaluation tests (no tests here): a model-free embedder, separable text, a run folder."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

TOPICS = {
    "great": [
        "delicious",
        "tasty",
        "wonderful",
        "love",
        "perfect",
        "fresh",
        "amazing",
        "favorite",
        "excellent",
        "sweet",
    ],
    "other": [
        "stale",
        "broken",
        "awful",
        "bland",
        "disappointed",
        "refund",
        "terrible",
        "soggy",
        "expired",
        "bitter",
    ],
}
COMMON = ["the", "this", "product", "snack", "coffee", "tea", "bag", "box", "order", "price"]


class BagEmbedder:
    """Signed feature hashing of words: texts sharing words are close. Counts what it embeds."""

    name = "bag-of-words"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls = 0
        self.texts_seen = 0

    def encode(self, texts: Sequence[str], desc: str = "") -> np.ndarray:
        self.calls += 1
        self.texts_seen += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                h = zlib.crc32(w.encode())
                out[i, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        return out


def labelled_texts(
    n: int, seed: int = 0, classes: Sequence[str] = ("great", "other"), words: int = 12
) -> tuple[list[str], list[str]]:
    """n texts, alternating classes; each mixes its class's words with common filler."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        c = classes[i % len(classes)]
        vocab = TOPICS[c] * 2 + COMMON
        texts.append(" ".join(rng.choice(vocab, size=words)))
        labels.append(c)
    return texts, labels


def write_table(
    path: Path,
    texts: list[str],
    labels: list[str],
    text_col: str = "review",
    label_col: str = "score",
) -> Path:
    pd.DataFrame({text_col: texts, label_col: labels}).to_csv(path, index=False)
    return path


def make_run(
    root: Path,
    n_final: int = 20,
    n_pop: int = 40,
    iterations: int = 2,
    seed: int = 0,
    classes: Sequence[str] = ("great", "other"),
    epsilon: float = 1.0,
    text_col: str = "review",
    label_col: str = "score",
) -> Path:
    """A finished run folder in the pipeline's layout (synthetic.jsonl, config, summary, state/)."""
    root.mkdir(parents=True, exist_ok=True)
    names = sorted(classes)
    (root / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "data": {
                    "path": "train.csv",
                    "text_column": text_col,
                    "label_columns": [label_col],
                },
                "privacy": {"epsilon": epsilon},
                "embedding": {"model": "default"},
                "pe": {"iterations": iterations},
            }
        ),
        encoding="utf-8",
    )
    (root / "summary.json").write_text(
        json.dumps(
            {
                "samples": n_final,
                "epsilon": epsilon,
                "iterations": iterations,
                "target_samples_per_class": {c: n_final // len(names) for c in names},
            }
        ),
        encoding="utf-8",
    )
    state = root / "state"
    state.mkdir(exist_ok=True)
    for t in range(iterations):
        texts, labels = labelled_texts(n_pop, seed=seed + 100 + t, classes=classes)
        samples: list[dict[str, Any]] = []
        for i, (x, y) in enumerate(zip(texts, labels)):
            op = "random" if (t == 0 and i < n_pop // 2) else "rephrase"
            samples.append(
                {
                    "id": f"t{t}s0-{op[0]}{i}",
                    "text": x,
                    "class_id": names.index(y),
                    "iteration": t,
                    "parent_id": None if op == "random" else "t0s0-n0",
                    "model": "fake",
                    "op": op,
                }
            )
        (state / f"population_{t:02d}.json").write_text(
            json.dumps({"samples": samples, "lookahead": []})
        )
    texts, labels = labelled_texts(n_final, seed=seed + 7, classes=classes)
    rows = [
        {
            "id": f"t{iterations - 1}s0-r{i}",
            "text": x,
            "class": y,
            "labels": {label_col: y},
            "iteration": iterations - 1,
            "parent_id": "t0s0-n0",
            "model": "fake",
            "op": "rephrase",
            "noisy_votes": 1.0,
        }
        for i, (x, y) in enumerate(zip(texts, labels))
    ]
    (root / "synthetic.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
    )
    return root
