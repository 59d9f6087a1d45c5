"""Drop-in alternatives to `augpe.embed.knn.knn_search`, for the voting benchmark (and, later, the package).

Same contract as `augpe.embed.knn.knn_search(queries, base, k, distance, chunk, rows=None)`: yields
`(start, ids)` per chunk of query rows, `ids` an int64 (n, k) array of row indices into `base`.
`rows`, when given, selects the query rows (gathered chunk by chunk, so memory stays bounded).

* `torch_knn_search`: exact search as tiled matmul + topk. Runs on CUDA when there is one (the GPU image
  has torch but no faiss) and on CPU otherwise (MKL sgemm: on the 2-core box it beat faiss-cpu's
  IndexFlat, see README). float32, no TF32, so it picks the same neighbours as faiss up to float ties.
* `faiss_ivf_knn_search` / `faiss_hnsw_knn_search`: *approximate* search, opt-in, for when exact search
  over (private x synthetic) is too slow. The index is built from the synthetic (public) embeddings
  only, so every private record still casts one vote vector of norm 1 that depends on that record and
  public data alone: the sensitivity, hence the DP guarantee, is unchanged. Only recall changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np

Distance = Literal["cosine", "l2"]


def _rows(queries: np.ndarray, rows: np.ndarray | None, start: int, stop: int) -> np.ndarray:
    return queries[start:stop] if rows is None else queries[rows[start:stop]]


def _n(queries: np.ndarray, rows: np.ndarray | None) -> int:
    return queries.shape[0] if rows is None else int(rows.size)


def _check_k(k: int, base: np.ndarray) -> None:
    if k > base.shape[0]:
        raise ValueError(f"k={k} exceeds the {base.shape[0]} synthetic samples it votes among")


# ---- exact, torch ----------------------------------------------------------------------------
def torch_knn_search(
    queries: np.ndarray,
    base: np.ndarray,
    k: int,
    distance: Distance,
    chunk: int = 65536,
    rows: np.ndarray | None = None,
    device: str | None = None,
    tile_bytes: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Exact k-NN by tiled `q @ base.T` + `topk`.

    The score tile (queries x base) is capped at `tile_bytes`, so a 100k-row base never needs a
    chunk x 100k matrix bigger than that; `chunk` bounds the host-side gather as in faiss's path.
    """
    import torch

    _check_k(k, base)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    b = torch.from_numpy(np.ascontiguousarray(base, dtype=np.float32)).to(dev)
    if distance == "cosine":
        b = torch.nn.functional.normalize(b, dim=1)
        b_sq = None
    else:
        b_sq = (b * b).sum(dim=1)  # ||b||^2; ||q||^2 is constant per query row, so it is dropped
    if tile_bytes is None:  # score tile: 1 GiB on a GPU, 128 MiB of host memory on CPU
        tile_bytes = 1 << 30 if dev.type == "cuda" else 1 << 27
    tile = max(1, min(chunk, tile_bytes // (4 * b.shape[0])))
    n = _n(queries, rows)
    with torch.inference_mode():
        for start in range(0, n, chunk):
            host = np.ascontiguousarray(
                _rows(queries, rows, start, min(n, start + chunk)), dtype=np.float32
            )
            out = np.empty((host.shape[0], k), dtype=np.int64)
            for s in range(0, host.shape[0], tile):
                q = torch.from_numpy(host[s : s + tile]).to(dev, non_blocking=True)
                if distance == "cosine":
                    q = torch.nn.functional.normalize(q, dim=1)
                    scores = q @ b.T
                else:
                    scores = 2.0 * (q @ b.T) - b_sq  # larger = nearer: -||q-b||^2 + ||q||^2
                ids = torch.topk(scores, k, dim=1, largest=True, sorted=True).indices
                out[s : s + ids.shape[0]] = ids.cpu().numpy()
            yield start, out


# ---- approximate, faiss ------------------------------------------------------------------------
def _faiss_prepare(x: np.ndarray, distance: Distance) -> np.ndarray:
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    if distance == "cosine":
        x = x.copy()
        faiss.normalize_L2(x)
    return x


def _search_chunks(index, queries, k, distance, chunk, rows) -> Iterator[tuple[int, np.ndarray]]:
    n = _n(queries, rows)
    for start in range(0, n, chunk):
        q = _faiss_prepare(_rows(queries, rows, start, min(n, start + chunk)), distance)
        _, ids = index.search(q, k)
        yield start, ids


def build_ivf(
    base: np.ndarray,
    distance: Distance,
    nlist: int | None = None,
    train_points: int = 32,
    niter: int = 10,
    seed: int = 0,
):
    """IVF-Flat over the synthetic rows; k-means (`niter` rounds) on <= train_points x nlist rows."""
    import faiss

    b = _faiss_prepare(base, distance)
    nlist = nlist or max(1, int(4 * np.sqrt(b.shape[0])))
    metric = faiss.METRIC_INNER_PRODUCT if distance == "cosine" else faiss.METRIC_L2
    quant = faiss.IndexFlatIP(b.shape[1]) if distance == "cosine" else faiss.IndexFlatL2(b.shape[1])
    index = faiss.IndexIVFFlat(quant, b.shape[1], nlist, metric)
    rng = np.random.default_rng(seed)
    n_train = min(b.shape[0], train_points * nlist)
    train = (
        b if n_train == b.shape[0] else b[np.sort(rng.choice(b.shape[0], n_train, replace=False))]
    )
    index.cp.seed = seed
    index.cp.niter = niter
    index.train(train)
    index.add(b)
    return index


def faiss_ivf_knn_search(
    queries: np.ndarray,
    base: np.ndarray,
    k: int,
    distance: Distance,
    chunk: int = 65536,
    rows: np.ndarray | None = None,
    nlist: int | None = None,
    nprobe: int = 16,
    index=None,
) -> Iterator[tuple[int, np.ndarray]]:
    _check_k(k, base)
    index = index if index is not None else build_ivf(base, distance, nlist)
    index.nprobe = min(nprobe, index.nlist)
    yield from _search_chunks(index, queries, k, distance, chunk, rows)


def build_hnsw(base: np.ndarray, distance: Distance, m: int = 16, ef_construction: int = 40):
    import faiss

    b = _faiss_prepare(base, distance)
    metric = faiss.METRIC_INNER_PRODUCT if distance == "cosine" else faiss.METRIC_L2
    index = faiss.IndexHNSWFlat(b.shape[1], m, metric)
    index.hnsw.efConstruction = ef_construction
    index.add(b)
    return index


def faiss_hnsw_knn_search(
    queries: np.ndarray,
    base: np.ndarray,
    k: int,
    distance: Distance,
    chunk: int = 65536,
    rows: np.ndarray | None = None,
    ef_search: int = 64,
    index=None,
) -> Iterator[tuple[int, np.ndarray]]:
    _check_k(k, base)
    index = index if index is not None else build_hnsw(base, distance)
    index.hnsw.efSearch = max(ef_search, k)
    yield from _search_chunks(index, queries, k, distance, chunk, rows)


def all_ids(search: Iterator[tuple[int, np.ndarray]], n: int, k: int) -> np.ndarray:
    """Collect a chunked search into one (n, k) array (tests and recall measurements only)."""
    out = np.empty((n, k), dtype=np.int64)
    for start, ids in search:
        out[start : start + ids.shape[0]] = ids
    return out
