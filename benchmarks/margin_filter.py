"""Class-faithful filtering on finished runs: keep only the texts the DP centroids place firmly.

    python benchmarks/margin_filter.py --dataset election-tweets --tag gemma-base \\
        "runs/bench/election-tweets-gemma-base/eps1-seed*"

The question behind class-faithful best-of-N (several candidates per request, keep those an
already-released DP labeller puts in their class with a margin): does a corpus of texts that sit
firmly on their side of the DP class boundary teach the learners more than the whole corpus?
This answers it without new generation, on each run's released corpus and its stored noisy
centroids (`state/centroids.json`: post-processing, no privacy cost):

- `all`: the released corpus.
- `drop q%`: each class keeps the (1 - q) of its texts with the largest margin: for two classes,
  the distance of the centroid score `cos(x, c1) - cos(x, c0)` from the cut between the classes;
  otherwise, the cosine to the own class's centroid minus the best other class's.
- `requested = label`: only the texts whose released label is the class their prompt asked for
  (the class stored with the text in the run's population files).

Both learners of `augpe eval` score each corpus on the real test split (balanced accuracy); the
table gives mean ± std over the runs and the rows kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from augpe.evaluate.downstream import linear_probe
from augpe.evaluate.independent import bow_classifier
from benchmarks.labellers import RESULTS, study_inputs, unit

CENTROIDS = "state/centroids.json"


def margins(x: np.ndarray, centroids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """How firmly each text sits in its labelled class under the (noisy) centroids."""
    scores = x @ unit(centroids).T
    if centroids.shape[0] == 2:
        lean = scores[:, 1] - scores[:, 0]
        cut = (lean[labels == 1].min() + lean[labels == 0].max()) / 2
        return np.where(labels == 1, lean - cut, cut - lean)
    own = scores[np.arange(len(x)), labels]
    other = scores.copy()
    other[np.arange(len(x)), labels] = -np.inf
    return own - other.max(axis=1)


def requested_classes(run: Path) -> dict[str, int]:
    """Sample id -> the class its prompt asked for (as stored in the run's populations)."""
    out: dict[str, int] = {}
    for f in sorted((run / "state").glob("population_*.json")):
        pop = json.loads(f.read_text())
        for s in pop["samples"] + [k for ks in pop.get("lookahead", []) for k in ks]:
            out[s["id"]] = s["class_id"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders or glob patterns (runs with centroids)")
    p.add_argument("--dataset", required=True)
    p.add_argument(
        "--tag", required=True, help="writes benchmarks/results/<dataset>/<tag>/margin-filter.md"
    )
    p.add_argument("--drop", type=float, nargs="+", default=[0.2, 0.4, 0.6])
    args = p.parse_args(argv)
    runs, bench, _, test, names, emb = study_inputs(args.runs, args.dataset, CENTROIDS)
    col = bench.label_columns[0]
    test_texts = list(test[bench.text_column].astype(str))
    test_y = list(test[col].astype(str))
    test_x = emb.encode(test_texts)
    res: dict[str, list[tuple[float, float, int]]] = {}
    for run in runs:
        rows = [json.loads(line) for line in (run / "synthetic.jsonl").open()]
        texts = [r["text"] for r in rows]
        labels = np.array([names.index(r["class"]) for r in rows])
        x = unit(emb.encode(texts))
        noisy = np.asarray(json.loads((run / CENTROIDS).read_text())["noisy"])
        m = margins(x, noisy, labels)
        asked = requested_classes(run)

        def score(keep: np.ndarray, name: str, texts=texts, labels=labels, x=x) -> None:
            y = [names[c] for c in labels[keep]]
            kept = [texts[i] for i in np.flatnonzero(keep)]
            bow = bow_classifier(kept, y, test_texts, test_y)["balanced_accuracy"]
            probe = linear_probe(x[keep], y, test_x, test_y)["balanced_accuracy"]
            res.setdefault(name, []).append((bow, probe, int(keep.sum())))

        score(np.ones(len(rows), bool), "all")
        for q in args.drop:
            keep = np.zeros(len(rows), bool)
            for c in range(len(names)):
                idx = np.flatnonzero(labels == c)
                keep[idx[np.argsort(-m[idx])[: round(len(idx) * (1 - q))]]] = True
            score(keep, f"drop {q:.0%}")
        score(np.array([asked.get(r["id"], -1) for r in rows]) == labels, "requested = label")
    out = RESULTS / args.dataset / args.tag
    out.mkdir(parents=True, exist_ok=True)
    md = [
        f"# Class-faithful filtering: {args.dataset} ({args.tag})",
        "",
        f"- command: `python benchmarks/margin_filter.py {' '.join(argv or sys.argv[1:])}`",
        f"- runs: {', '.join(r.name for r in runs)}",
        "- balanced accuracy on the real test split, mean ± std over the runs",
        "",
        "| corpus | rows | bag-of-words | embedding probe |",
        "|---|---|---|---|",
    ]
    for name, vals in res.items():
        a = np.asarray(vals)
        md.append(
            f"| {name} | {a[:, 2].mean():.0f} | {a[:, 0].mean():.3f} ± {a[:, 0].std():.3f} "
            f"| {a[:, 1].mean():.3f} ± {a[:, 1].std():.3f} |"
        )
    (out / "margin-filter.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
