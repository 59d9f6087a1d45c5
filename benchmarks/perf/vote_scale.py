"""Voting at scale: private x synthetic nearest-neighbour vote, time and peak memory.

The target case is 1M private x 100k synthetic embeddings (dim 384). Exact search costs
2 * 1e6 * 1e5 * 384 = 7.7e13 flop (single class; C balanced classes divide it by C): about half an
hour on a 2-core CPU, so this script measures what fits in minutes and extrapolates, saying so:

  estimate   the flop count, and the exact-search rate measured on a small calibration size;
  memory     1M private (held in RAM, as the pipeline holds them) x a small synthetic set, through
             the real `augpe.privacy.vote.vote_histogram`: time and *peak RSS* (private rows are streamed
             to faiss in `vote_chunk` chunks, so the peak should be the private array + O(chunk));
  wide       N_WIDE private x 100k synthetic through `vote_histogram` with faiss (the default) and
             with the torch path: the rate at full synthetic width -> extrapolated 1M x 100k time;
  approx     opt-in IVF / HNSW (faiss) over the 100k synthetic rows: build time, search time and
             recall@1 against exact search, on unstructured (Gaussian) and clustered data.

Each measurement runs in its own subprocess, so its peak RSS is its own.
    python benchmarks/perf/vote_scale.py                 # defaults: < 10 min on 2 busy cores
    python benchmarks/perf/vote_scale.py --gpu           # on a CUDA machine: torch path at full size
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine, peak_rss_gib, write_result

DIM = 384
TARGET_N, TARGET_M = 1_000_000, 100_000


def make_embeddings(n: int, d: int, kind: str, seed: int, centers: int = 2000) -> np.ndarray:
    """float32 rows, generated in chunks (no float64 temporaries): 'uniform' (fast, for timing),
    'gaussian' (no structure: the worst case for approximate search) or 'clustered' (points around
    shared random centres, so private and synthetic share structure, as sentence embeddings do)."""
    out = np.empty((n, d), dtype=np.float32)
    rng = np.random.default_rng(seed)
    cen = None
    if kind == "clustered":
        cen = np.random.default_rng(12345).standard_normal((centers, d), dtype=np.float32)
        cen /= np.linalg.norm(cen, axis=1, keepdims=True)
    step = 1 << 16
    for s in range(0, n, step):
        e = min(n, s + step)
        if kind == "uniform":  # the cheapest random rows: timing and memory runs only
            x = rng.random((e - s, d), dtype=np.float32)
            x -= 0.5
        else:
            x = rng.standard_normal((e - s, d), dtype=np.float32)
        if cen is not None:
            # noise of norm ~0.6 around a unit centre: NN cosine ~0.7, as for MiniLM embeddings
            x *= 0.6 / np.sqrt(d)
            x += cen[rng.integers(0, centers, e - s)]
        out[s:e] = x
    return out


# ---- workers (one subprocess each) ----------------------------------------------------------
def worker_vote(a: dict) -> dict:
    from augpe.privacy import vote

    t0 = time.perf_counter()
    priv = make_embeddings(a["n"], DIM, a["kind"], seed=1)
    syn = make_embeddings(a["m"], DIM, a["kind"], seed=2)
    gen_s = time.perf_counter() - t0
    rss_data = peak_rss_gib()
    if a["backend"] == "torch":
        import torch
        from knn_backends import torch_knn_search

        vote.knn_search = functools.partial(torch_knn_search, device=a.get("device"))
        # warm-up outside the timed region: CUDA context / MKL thread pool start-up
        list(torch_knn_search(priv[:64], syn[:64], a["k"], "cosine", device=a.get("device")))
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    t0 = time.perf_counter()
    hist = vote.vote_histogram(
        priv,
        np.zeros(a["n"], np.int64),
        syn,
        np.zeros(a["m"], np.int64),
        k=a["k"],
        distance="cosine",
        chunk=a["chunk"],
    )
    vote_s = time.perf_counter() - t0
    if a.get("save"):
        np.save(a["save"], hist)
    return {
        "n": a["n"],
        "m": a["m"],
        "k": a["k"],
        "backend": a["backend"],
        "chunk": a["chunk"],
        "data_gen_seconds": round(gen_s, 2),
        "vote_seconds": round(vote_s, 2),
        "gflops": round(2 * a["n"] * a["m"] * DIM / vote_s / 1e9, 1),
        "private_array_gib": round(priv.nbytes / 2**30, 3),
        "peak_rss_after_data_gib": round(rss_data, 3),
        "peak_rss_gib": round(peak_rss_gib(), 3),
        "votes_total": float(hist.sum()),
    }


def worker_approx(a: dict) -> dict:
    import faiss
    from knn_backends import (
        all_ids,
        build_hnsw,
        build_ivf,
        faiss_hnsw_knn_search,
        faiss_ivf_knn_search,
    )

    if a["kind"] == "real":  # real sentence embeddings: the first rows query the last ones
        rows = np.load(a["path"]).astype(np.float32)
        a["n"] = int(len(rows) * a["split"])
        a["m"] = len(rows) - a["n"]
        priv, syn = rows[: a["n"]], rows[a["n"] :]
    else:
        priv = make_embeddings(a["n"], DIM, a["kind"], seed=1)
        syn = make_embeddings(a["m"], DIM, a["kind"], seed=2)
    # exact reference on the first n_recall queries (recall needs it; its time is reported too)
    nr = min(a["n_recall"], a["n"])
    flat = faiss.IndexFlatIP(syn.shape[1])
    b = syn.copy()
    faiss.normalize_L2(b)
    flat.add(b)
    q = priv[:nr].copy()
    faiss.normalize_L2(q)
    t0 = time.perf_counter()
    exact_sim, exact = flat.search(q, 1)
    exact_s = time.perf_counter() - t0
    out: dict = {
        "n": a["n"],
        "m": a["m"],
        "kind": a["kind"],
        "n_recall": nr,
        "exact_seconds_per_1k_queries": round(exact_s / nr * 1000, 4),
        "methods": [],
    }
    for spec in a["methods"]:
        name, _, param = spec.partition(":")
        t0 = time.perf_counter()
        if name == "ivf":
            index = build_ivf(syn, "cosine", nlist=int(param) if param else None)
            search = functools.partial(faiss_ivf_knn_search, index=index)
            knobs = [("nprobe", p) for p in a["nprobe"]]
        else:
            index = build_hnsw(syn, "cosine", m=int(param) if param else 16)
            search = functools.partial(faiss_hnsw_knn_search, index=index)
            knobs = [("ef_search", e) for e in a["ef"]]
        build_s = time.perf_counter() - t0
        for knob, val in knobs:
            t0 = time.perf_counter()
            ids = all_ids(search(priv, syn, 1, "cosine", **{knob: val}), a["n"], 1)
            search_s = time.perf_counter() - t0
            got = ids[:nr, 0]
            got_sim = np.einsum("ij,ij->i", q, b[got])
            # a different id at the same similarity (a float tie) is not a miss
            hit = (got == exact[:, 0]) | (got_sim >= exact_sim[:, 0] - 1e-6)
            out["methods"].append(
                {
                    "method": name,
                    "param": param or None,
                    knob: val,
                    "build_seconds": round(build_s, 2),
                    "search_seconds": round(search_s, 2),
                    "seconds_per_1k_queries": round(search_s / a["n"] * 1000, 4),
                    "speedup_vs_exact_search": round(exact_s / nr / (search_s / a["n"]), 1),
                    "recall_at_1": round(float(hit.mean()), 4),
                }
            )
    out["peak_rss_gib"] = round(peak_rss_gib(), 3)
    return out


def worker_calibrate(a: dict) -> dict:
    import faiss

    priv = make_embeddings(a["n"], DIM, "uniform", seed=1)
    syn = make_embeddings(a["m"], DIM, "uniform", seed=2)
    index = faiss.IndexFlatIP(DIM)
    index.add(syn)
    index.search(priv[:256], 1)  # warm-up
    t0 = time.perf_counter()
    index.search(priv, 1)
    s = time.perf_counter() - t0
    return {
        "n": a["n"],
        "m": a["m"],
        "seconds": round(s, 3),
        "gflops": round(2 * a["n"] * a["m"] * DIM / s / 1e9, 1),
        "threads": faiss.omp_get_max_threads(),
    }


WORKERS = {"vote": worker_vote, "approx": worker_approx, "calibrate": worker_calibrate}


def spawn(worker: str, **args) -> dict:
    cmd = [sys.executable, __file__, "--worker", json.dumps({"kind_": worker, **args})]
    print(f"[vote_scale] {worker} {args}", file=sys.stderr, flush=True)
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        return {"error": res.stderr[-2000:]}
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("{")][-1]
    r = json.loads(line)
    print(f"[vote_scale]   -> {r}", file=sys.stderr, flush=True)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--mem-n", type=int, default=TARGET_N, help="private rows of the memory run")
    ap.add_argument("--mem-m", type=int, default=1000, help="synthetic rows of the memory run")
    ap.add_argument(
        "--wide-n", type=int, default=16_000, help="private rows of the full-width runs"
    )
    ap.add_argument("--m", type=int, default=TARGET_M, help="synthetic rows (full width)")
    ap.add_argument("--chunk", type=int, default=65536, help="vote_chunk")
    ap.add_argument("--k", type=int, default=1)
    ap.add_argument(
        "--skip", default="", help="comma list of phases to skip: memory,wide,torch,approx"
    )
    ap.add_argument(
        "--approx", default="ivf,hnsw:16", help="methods, e.g. 'ivf', 'ivf:1024', 'hnsw:32'"
    )
    ap.add_argument("--nprobe", default="8,32")
    ap.add_argument("--ef", default="64")
    ap.add_argument("--approx-n", type=int, default=16_000)
    ap.add_argument("--approx-kinds", default="clustered,gaussian")
    ap.add_argument(
        "--real-embeddings",
        default=None,
        help="a .npy of real sentence embeddings (e.g. a run's private cache): approx recall on them",
    )
    ap.add_argument(
        "--gpu", action="store_true", help="torch path on CUDA at the full 1M x 100k size"
    )
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    if args.worker:
        a = json.loads(args.worker)
        print(json.dumps(WORKERS[a.pop("kind_")](a)))
        return

    info = machine()
    skip = set(filter(None, args.skip.split(",")))
    res: dict = {
        "_machine": info,
        "target": {"n_private": TARGET_N, "n_synthetic": TARGET_M, "dim": DIM},
    }
    flop = 2 * TARGET_N * TARGET_M * DIM
    cal = spawn("calibrate", n=8192, m=20000)
    res["estimate"] = {
        "flop_exact_1M_x_100k": flop,
        "calibration": cal,
        "estimated_seconds_1M_x_100k": round(flop / (cal.get("gflops", 1) * 1e9)),
        "note": "single class; with C balanced classes the exact cost is divided by C",
    }
    if "memory" not in skip:
        res["memory"] = spawn(
            "vote",
            n=args.mem_n,
            m=args.mem_m,
            k=args.k,
            kind="uniform",
            backend="faiss",
            chunk=args.chunk,
        )
    tmp = Path(tempfile.mkdtemp(prefix="vote_scale_"))
    if "wide" not in skip:
        res["wide_faiss"] = spawn(
            "vote",
            n=args.wide_n,
            m=args.m,
            k=args.k,
            kind="uniform",
            backend="faiss",
            chunk=args.chunk,
            save=str(tmp / "faiss.npy"),
        )
    if "torch" not in skip:
        res["wide_torch"] = spawn(
            "vote",
            n=args.wide_n,
            m=args.m,
            k=args.k,
            kind="uniform",
            backend="torch",
            chunk=args.chunk,
            save=str(tmp / "torch.npy"),
        )
        if (tmp / "faiss.npy").is_file() and (tmp / "torch.npy").is_file():
            hf, ht = np.load(tmp / "faiss.npy"), np.load(tmp / "torch.npy")
            res["wide_torch"]["histogram_equal_to_faiss"] = bool(np.array_equal(hf, ht))
            res["wide_torch"]["histogram_l1_diff"] = float(np.abs(hf - ht).sum())
    for key in ("wide_faiss", "wide_torch"):
        r = res.get(key, {})
        if "vote_seconds" in r:
            r["extrapolated_seconds_1M_x_100k"] = round(
                r["vote_seconds"] * TARGET_N / r["n"] * TARGET_M / r["m"]
            )
    if args.gpu:
        res["gpu_torch_full"] = spawn(
            "vote",
            n=TARGET_N,
            m=TARGET_M,
            k=args.k,
            kind="uniform",
            backend="torch",
            chunk=args.chunk,
            device="cuda",
        )
    if "approx" not in skip:
        res["approx"] = [
            spawn(
                "approx",
                n=args.approx_n,
                m=args.m,
                kind=kind,
                n_recall=4000,
                methods=args.approx.split(","),
                nprobe=[int(x) for x in args.nprobe.split(",")],
                ef=[int(x) for x in args.ef.split(",")],
            )
            for kind in args.approx_kinds.split(",")
        ]
        if args.real_embeddings:
            res["approx"].append(
                spawn(
                    "approx",
                    kind="real",
                    path=args.real_embeddings,
                    split=0.75,
                    n_recall=10**9,
                    methods=args.approx.split(","),
                    nprobe=[int(x) for x in args.nprobe.split(",")],
                    ef=[int(x) for x in args.ef.split(",")],
                )
            )
    write_result("vote_scale", res, args.out)


if __name__ == "__main__":
    main()
