"""What overlapping the private embedding with the initial generation buys, when generation is not
on this machine's CPU (a hosted API, an OpenAI-compatible server elsewhere, vLLM on a GPU).

The initial population needs no private data, so `augpe.runner.compose.run` can embed the private texts
on a background thread while it is generated (`embedding.overlap`). On a CPU that also runs the
generator both stages are compute-bound and overlap cannot help (auto turns it off there); with a
remote generator the CPU is idle while requests are in flight. This script runs the same fixed
run twice through the real door, overlap off then on, with the real MiniLM embedder on the real
Amazon reviews, and a stand-in remote backend: each `generate()` call waits `--call-seconds`
(the latency of a batch at an API, CPU idle) and returns seeded made-up reviews.

    python benchmarks/perf/overlap.py                          # 1000 reviews, 20 s per call
    python benchmarks/perf/overlap.py --set data.max_records=4000 --call-seconds 30
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO, machine, write_result

from augpe.llm.base import BaseLLM

WORDS = [
    "coffee",
    "tea",
    "chips",
    "cookies",
    "honey",
    "sauce",
    "taste",
    "price",
    "bag",
    "box",
    "fresh",
    "stale",
    "sweet",
    "salty",
    "great",
    "good",
    "bad",
    "love",
    "hate",
    "again",
    "order",
    "shipping",
    "dog",
    "cat",
    "treats",
    "flavor",
    "smell",
    "cheap",
    "worth",
    "buy",
]


class RemoteStandIn(BaseLLM):
    """An LLM that costs this machine no CPU: every call waits `seconds`, then answers."""

    def __init__(self, seconds: float) -> None:
        from augpe.llm.base import Usage

        self.seconds = seconds
        self.name = "remote-stand-in"
        self.usage = Usage()

    def generate(self, requests: Sequence[Any], desc: str = "") -> list[Any]:
        from augpe.llm.base import Generation

        t0 = time.perf_counter()
        time.sleep(self.seconds)
        out = []
        for r in requests:
            rng = np.random.default_rng(r.seed)
            text = " ".join(rng.choice(WORDS, size=int(rng.integers(25, 60)))).capitalize() + "."
            g = Generation(text=text, prompt_tokens=100, completion_tokens=len(text.split()))
            self.usage.add(g)
            out.append(g)
        self.usage.seconds += time.perf_counter() - t0
        return out

    def close(self) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", default=str(REPO / "configs" / "amazon-demo.yaml"))
    ap.add_argument("--set", action="append", default=[], help="extra section.key=value overrides")
    ap.add_argument("--call-seconds", type=float, default=20.0, help="latency of one batch")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    info = machine()
    from augpe.config import load_config
    from augpe.demo import DEMO_DATA, export_amazon
    from augpe.runner.components import build_embedder
    from augpe.runner.compose import run

    train, _ = export_amazon(DEMO_DATA)
    work = Path(tempfile.mkdtemp(prefix="augpe_overlap_"))
    base = [
        f"data.path={train}",
        "data.max_records=1000",
        "pe.iterations=2",
        "pe.samples=16",
        "privacy.noise_seed=1",
        "embedding.cache_private=false",  # both runs pay the private embedding
        *args.set,
    ]
    cfg0 = load_config(args.config, base)
    embedder = build_embedder(cfg0, show_progress=False)  # loaded once, outside the clocks
    embedder.encode(["warm up the model"])
    runs: dict[str, Any] = {}
    for mode in ("off", "on"):
        cfg = load_config(
            args.config,
            [
                *base,
                f"embedding.overlap={mode}",
                f"output.dir={work / mode}",
                "output.overwrite=true",
            ],
        )
        t0 = time.perf_counter()
        result = run(
            cfg, show_progress=False, llm=RemoteStandIn(args.call_seconds), embedder=embedder
        )
        wall = time.perf_counter() - t0
        timings = json.loads((result.run_dir / "timings.json").read_text())
        runs[mode] = {
            "wall_seconds": round(wall, 2),
            "stages": timings["totals"],
            "generate_calls_seconds": round(result.timings["generation"]["seconds"], 2),
            "corpus": [r["text"] for r in result.samples],
        }
    same = runs["on"].pop("corpus") == runs["off"].pop("corpus")
    out = {
        "_machine": info,
        "overrides": base,
        "call_seconds": args.call_seconds,
        "runs": runs,
        "same_corpus": same,
        "saved_seconds": round(runs["off"]["wall_seconds"] - runs["on"]["wall_seconds"], 2),
        "ratio_wall_on_vs_off": round(runs["on"]["wall_seconds"] / runs["off"]["wall_seconds"], 3),
        "ratio_e2e_off": round(
            runs["off"]["wall_seconds"] / runs["off"]["generate_calls_seconds"], 3
        ),
        "ratio_e2e_on": round(runs["on"]["wall_seconds"] / runs["on"]["generate_calls_seconds"], 3),
    }
    path = write_result("overlap", out, args.out)
    print({k: v for k, v in out.items() if k != "_machine"})
    print(f"results in {path}")


if __name__ == "__main__":
    main()
