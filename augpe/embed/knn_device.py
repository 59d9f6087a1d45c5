"""The GPU side of the vote's k-NN search, and which device a search runs on.

`augpe.embed.knn.knn_search` asks a fast float32 engine (faiss on CPU, torch here on CUDA) for a few
more candidates than k, then ranks those candidates itself in float64 with ties broken by the
lower id. The ranking is therefore a function of the embeddings alone, not of the engine, the
device or the batch a row was searched in: the GPU and CPU paths return the same ids, and so do
the shards of a Ray vote. This module only supplies the candidates; the checks (`_valid_ids`,
`check_finite`) and the exact ranking stay in `augpe.embed.knn`.

TF32 is switched off for the search: its 10-bit mantissa would make the candidate scores too
coarse for the float32 error bound the ranking relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np

__all__ = ["Candidates", "cuda_available", "resolve_device", "torch_candidates"]

Candidates = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
"""(float32 query rows, kk) -> (float32 scores, higher = nearer, sorted; int64 ids), (rows, kk)."""


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a base dependency
        return False
    try:
        return bool(torch.cuda.is_available())
    except (RuntimeError, AssertionError):  # a broken CUDA install counts as none
        return False


def resolve_device(device: str) -> Literal["cpu", "cuda"]:
    """'auto' -> 'cuda' when a CUDA GPU is visible to this process, else 'cpu'.

    Inside a Ray actor that reserved no GPU, Ray hides every GPU (CUDA_VISIBLE_DEVICES=""), so
    'auto' is 'cpu' there: a shard only uses a GPU it was given.
    """
    if device == "cpu":
        return "cpu"
    if device not in ("auto", "cuda"):
        raise ValueError(f"k-NN device must be auto, cpu or cuda, got {device!r}")
    has_gpu = cuda_available()
    if device == "cuda" and not has_gpu:
        raise ValueError("k-NN device 'cuda' was asked for, but no CUDA GPU is visible")
    return "cuda" if has_gpu else "cpu"


def torch_candidates(
    base: np.ndarray,
    distance: str,
    device: str = "cuda",
    tile_bytes: int | None = None,
) -> Candidates:
    """Top-kk candidates by tiled float32 `q @ base.T` + `topk` on `device` (exact float32 search).

    L2 ranks by 2 q.b - |b|^2 (|q|^2 is constant per row); cosine by the dot product of
    normalised rows. The score tile is capped at `tile_bytes` (1 GiB on a GPU, 128 MiB on CPU).
    `device='cpu'` runs the same code on the CPU, which is how the tests cover it without a GPU.
    """
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    b = torch.from_numpy(np.ascontiguousarray(base, dtype=np.float32)).to(dev)
    if distance == "cosine":
        b = torch.nn.functional.normalize(b, dim=1)
        b_sq = None
    else:
        b_sq = (b * b).sum(dim=1)
    if tile_bytes is None:
        tile_bytes = 1 << 30 if dev.type == "cuda" else 1 << 27
    tile = max(1, tile_bytes // (4 * max(1, b.shape[0])))

    def search(q_host: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
        out = np.empty((q_host.shape[0], kk), dtype=np.int64)
        val = np.empty((q_host.shape[0], kk), dtype=np.float32)
        with torch.inference_mode():
            for s in range(0, q_host.shape[0], tile):
                q: Any = torch.from_numpy(np.ascontiguousarray(q_host[s : s + tile])).to(dev)
                if distance == "cosine":
                    scores = torch.nn.functional.normalize(q, dim=1) @ b.T
                else:
                    scores = 2.0 * (q @ b.T) - b_sq
                top = torch.topk(scores, kk, dim=1)  # sorted, largest first
                out[s : s + tile] = top.indices.cpu().numpy()
                val[s : s + tile] = top.values.cpu().numpy()
        return val, out

    return search


def knn_device_setting(device: str) -> Literal["cpu", "cuda"]:
    """`pe.knn_device` resolved for this process, with the error naming the setting."""
    from augpe.errors import ConfigError

    try:
        return resolve_device(device)
    except ValueError as err:
        raise ConfigError(f"pe.knn_device: {err} (use auto or cpu)") from None
