"""Scale-out on this machine: the vote local vs 2 Ray vote shards, generation 1 vs 2 replicas.

A real 2-node Ray cluster (`ray.cluster_utils.Cluster`: a head and a worker node, separate
raylet / object-store processes, 1 CPU each) is started inside each measurement's subprocess.

  vote   N private x M synthetic (dim 384, one class, k=1, cosine, uniform random rows):
         `augpe.privacy.vote.vote_histogram` in one process (faiss, all cores) vs `ShardedVote` with
         2 shards (1 faiss thread each, one per node). Time of one vote (the one-off transfer of
         the private rows to the shards is reported apart), peak RSS of the local process, of
         each shard and of the driver; the two histograms are compared bit for bit. Also the bare
         faiss `index.search(q, 1)` on the same rows: the cost of augpe's exact float64 ranking.
  gen    the embedded model (SmolLM2-135M, deterministic mode, 1 thread per replica) on the same
         RANDOM-API-like requests through RayLLM with 1 replica and with 2: wall time, tokens/s,
         per-replica tokens/s, and whether the texts are identical.

    python benchmarks/perf/ray_scale.py vote --n 1000000 --m 1000
    python benchmarks/perf/ray_scale.py vote --n 32768 --m 100000
    python benchmarks/perf/ray_scale.py gen --requests 24 --max-tokens 48
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine, peak_rss_gib, write_result
from vote_scale import make_embeddings

DIM = 384
STORE = 2 * 2**30  # object store per node: holds one shard's private rows in transit


def _cluster():
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": STORE, "include_dashboard": False},
    )
    c.add_node(num_cpus=1, object_store_memory=STORE)
    c.wait_for_nodes()
    import ray

    ray.init(address=c.address, logging_level="WARNING")
    return c


# ---- workers (one subprocess each) ----------------------------------------------------------
def worker_vote_local(a: dict) -> dict:
    from augpe.privacy import vote

    priv = make_embeddings(a["n"], DIM, "uniform", seed=1)
    syn = make_embeddings(a["m"], DIM, "uniform", seed=2)
    pc, sc = np.zeros(a["n"], np.int64), np.zeros(a["m"], np.int64)
    t0 = time.perf_counter()
    hist = vote.vote_histogram(priv, pc, syn, sc, 1, "cosine")
    vote_s = time.perf_counter() - t0
    np.save(a["save"], hist)
    out = {"vote_seconds": round(vote_s, 2), "peak_rss_gib": round(peak_rss_gib(), 3)}
    if a.get("bare"):  # the search alone, no exact ranking, no checks
        import faiss

        index = faiss.IndexFlatIP(DIM)
        b = syn.copy()
        faiss.normalize_L2(b)
        index.add(b)
        t0 = time.perf_counter()
        for s in range(0, a["n"], 65536):
            q = priv[s : s + 65536].copy()
            faiss.normalize_L2(q)
            index.search(q, 1)
        out["bare_faiss_search_seconds"] = round(time.perf_counter() - t0, 2)
    return out


def worker_vote_ray(a: dict) -> dict:
    from augpe.config import ExecutionConfig
    from augpe.scale.ray_vote import ShardedVote

    cluster = _cluster()
    try:
        priv = make_embeddings(a["n"], DIM, "uniform", seed=1)
        syn = make_embeddings(a["m"], DIM, "uniform", seed=2)
        pc, sc = np.zeros(a["n"], np.int64), np.zeros(a["m"], np.int64)
        ex = ExecutionConfig(engine="ray", vote_shards=2, vote_num_cpus=1)
        t0 = time.perf_counter()
        sv = ShardedVote(priv, pc, None, ex)
        setup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        hist = sv.histogram(syn, sc, 1, "cosine")
        vote_s = time.perf_counter() - t0
        info = sv.info()
        sv.close()
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
    same = bool(np.load(a["local"]).tobytes() == hist.tobytes()) if a.get("local") else None
    return {
        "shards": 2,
        "setup_seconds_transfer_private_rows": round(setup_s, 2),
        "vote_seconds": round(vote_s, 2),
        "shard_peak_rss_gib": [round(i["peak_rss_gib"], 3) for i in info],
        "shard_rows": [i["rows"] for i in info],
        "shards_on_distinct_nodes": len({i["node"] for i in info}) == 2,
        "driver_peak_rss_gib": round(peak_rss_gib(), 3),
        "histogram_identical_to_local": same,
    }


def _gen_requests(n: int, max_tokens: int):
    from augpe.llm.base import GenerationRequest

    topics = ["coffee", "crackers", "tea", "olive oil", "granola", "dark chocolate", "honey"]
    return [
        GenerationRequest(
            messages=[
                {"role": "system", "content": "You write short product reviews."},
                {
                    "role": "user",
                    "content": f"Write a short review of {topics[i % len(topics)]} "
                    f"(sample {i}), about 30 words.",
                },
            ],
            max_tokens=max_tokens,
            temperature=1.0,
            top_p=0.95,
            seed=500 + i,
        )
        for i in range(n)
    ]


def worker_gen(a: dict) -> dict:
    import functools

    from augpe.config import ExecutionConfig, generation_config
    from augpe.scale.ray_llm import RayLLM, build_backend, replica_config

    cluster = _cluster()
    out: dict = {"requests": a["requests"], "max_tokens": a["max_tokens"], "runs": []}
    texts = {}
    try:
        reqs = _gen_requests(a["requests"], a["max_tokens"])
        for replicas in a["replicas"]:
            ex = ExecutionConfig(engine="ray", replicas=replicas, num_cpus=1, batch_size=2)
            gen = replica_config(generation_config(deterministic=True), ex)
            t0 = time.perf_counter()
            llm = RayLLM(
                functools.partial(build_backend, gen.model_dump()), ex, show_progress=False
            )
            load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            gens = llm.generate(reqs, "bench")
            wall = time.perf_counter() - t0
            report = llm.cost_report()
            timing = llm.replica_timings()
            llm.close()
            texts[replicas] = [g.text for g in gens]
            tok = sum(g.completion_tokens for g in gens)
            out["runs"].append(
                {
                    "replicas": replicas,
                    "load_seconds": round(load_s, 2),
                    "generate_wall_seconds": round(wall, 2),
                    "completion_tokens": tok,
                    "tokens_per_second": round(tok / wall, 2),
                    "per_replica": [{**r, **t} for r, t in zip(report["replicas"], timing)],
                    "loadavg_after": list(os.getloadavg()),
                }
            )
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
    if len(out["runs"]) == 2:
        r1, r2 = out["runs"]
        out["speedup_2_vs_1"] = round(r1["generate_wall_seconds"] / r2["generate_wall_seconds"], 3)
        out["texts_identical_1_vs_2_replicas"] = texts[r1["replicas"]] == texts[r2["replicas"]]
    return out


WORKERS = {"vote_local": worker_vote_local, "vote_ray": worker_vote_ray, "gen": worker_gen}


def spawn(worker: str, **args) -> dict:
    cmd = [sys.executable, __file__, "--worker", json.dumps({"kind_": worker, **args})]
    print(f"[ray_scale] {worker} {args}", file=sys.stderr, flush=True)
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        return {"error": res.stderr[-3000:]}
    r = json.loads([ln for ln in res.stdout.splitlines() if ln.startswith("{")][-1])
    print(f"[ray_scale]   -> {r}", file=sys.stderr, flush=True)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("mode", nargs="?", choices=["vote", "gen"])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=1_000_000, help="private rows (vote)")
    ap.add_argument("--m", type=int, default=1000, help="synthetic rows (vote)")
    ap.add_argument("--requests", type=int, default=24)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.worker:
        a = json.loads(args.worker)
        print(json.dumps(WORKERS[a.pop("kind_")](a)))
        return
    info = machine()
    if args.mode == "vote":
        tmp = Path(tempfile.mkdtemp(prefix="ray_scale_"))
        local = spawn("vote_local", n=args.n, m=args.m, save=str(tmp / "local.npy"), bare=True)
        ray_res = spawn("vote_ray", n=args.n, m=args.m, local=str(tmp / "local.npy"))
        flop = 2 * args.n * args.m * DIM
        res = {
            "_machine": info,
            "size": {"n_private": args.n, "n_synthetic": args.m, "dim": DIM, "k": 1},
            "flop": flop,
            "local": local,
            "ray_2_shards": ray_res,
        }
        if "vote_seconds" in local and "vote_seconds" in ray_res:
            res["speedup_ray_vs_local"] = round(local["vote_seconds"] / ray_res["vote_seconds"], 3)
            res["extrapolated_seconds_1M_x_100k"] = {
                k: round(v["vote_seconds"] * 1e6 * 1e5 / (args.n * args.m))
                for k, v in (("local", local), ("ray_2_shards", ray_res))
            }
        write_result(f"ray_vote-{args.n}x{args.m}", res, args.out)
    elif args.mode == "gen":
        res = {
            "_machine": info,
            **spawn("gen", requests=args.requests, max_tokens=args.max_tokens, replicas=[1, 2]),
        }
        write_result("ray_gen", res, args.out)
    else:
        ap.error("mode: vote or gen")


if __name__ == "__main__":
    main()
