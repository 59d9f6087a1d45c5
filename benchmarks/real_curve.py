"""What a corpus of n texts can do at best: the fast-tier probe trained on n REAL training texts.

    python benchmarks/real_curve.py --dataset amazon --sizes 48 100 300 2000 --draws 5

For each n, `--draws` random subsets of the real training split (seeds 0..draws-1) train the
benchmark's probe (`augpe.evaluate.downstream.linear_probe`, MiniLM embeddings), scored on the real
test split: accuracy, macro-F1, ROC AUC (mean ± std). A synthetic corpus of n texts is compared with
the row of its n. Writes benchmarks/results/<dataset>/real-curve/real-curve.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from augpe.embed.sentence import SentenceTransformerEmbedder
from augpe.evaluate.downstream import linear_probe
from benchmarks.bench_data import load_benchmark

RESULTS = ROOT / "benchmarks" / "results"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", default="amazon")
    p.add_argument("--sizes", nargs="+", type=int, default=[48, 100, 300, 2000])
    p.add_argument("--draws", type=int, default=5)
    args = p.parse_args(argv)
    bench = load_benchmark(args.dataset)
    col = bench.label_columns[0]
    train, test = pd.read_csv(bench.train).fillna(""), pd.read_csv(bench.test).fillna("")
    emb = SentenceTransformerEmbedder("default", "cpu", 64, show_progress=False)
    x_train = emb.encode(list(train[bench.text_column].astype(str)))
    x_test = emb.encode(list(test[bench.text_column].astype(str)))
    y_train, y_test = np.asarray(train[col].astype(str)), list(test[col].astype(str))
    lines = [
        f"# The probe on n real texts ({bench.name})",
        "",
        "`python benchmarks/real_curve.py " + " ".join(argv or sys.argv[1:]) + "`",
        "",
        "| n real texts | draws | accuracy | macro-F1 | AUC |",
        "|---|---|---|---|---|",
    ]
    for n in args.sizes:
        scores = []
        for d in range(args.draws):
            idx = np.random.default_rng(d).choice(len(train), min(n, len(train)), replace=False)
            r = linear_probe(x_train[idx], list(y_train[idx]), x_test, y_test)
            scores.append(
                (r["accuracy"], r["macro_f1"], r["auc"] if r["auc"] is not None else np.nan)
            )
        a = np.asarray(scores, dtype=float)
        m, s = np.nanmean(a, axis=0), np.nanstd(a, axis=0)
        lines.append(
            f"| {n} | {args.draws} | {m[0]:.3f} ± {s[0]:.3f} | {m[1]:.3f} ± {s[1]:.3f} "
            f"| {m[2]:.3f} ± {s[2]:.3f} |"
        )
        print(lines[-1], flush=True)
    (RESULTS / bench.name / "real-curve").mkdir(parents=True, exist_ok=True)
    (RESULTS / bench.name / "real-curve" / "real-curve.md").write_text(
        "\n".join(lines) + "\n", encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
