"""Labellers compared on finished runs: how much of the probe's score is the texts, how much the labels.

    python benchmarks/labellers.py --dataset amazon --tag x4c \
        "runs/bench/amazon-x4c-plus-relabelplus-softplus-k4plus-centroids/eps1-seed*"

Each run's released texts (and their weights) are kept; only their labels change. Every labeller is
scored by the fast-tier probe on the real test split trained on those texts (accuracy, macro-F1,
AUC), and by its own accuracy when it labels the real test split directly. This is an analysis,
not a release: several rows read the CLEAN private embeddings and are marked "not private"; they
bound what a better DP labeller could reach with the same texts. The DP rows draw their noise
here with numpy (fresh draws, `--draws` of them), never through a run's privacy session, and
nothing they compute is written anywhere but the results table.

- `released`: the labels the run shipped.
- `centroid (clean)`: nearest class centroid in cosine, from the clean class sums (not private).
- `centroid (DP, redrawn)`: the same from sums with noise at the run's own centroid sigma.
- `centroid + DP threshold`: the binary centroid score `cos(x, c1) - cos(x, c0)`, its threshold
  set where a noisy per-class histogram of the private records' scores says accuracy is best
  (bins from the synthetic texts' score quantiles; noise `--hist-sigma`; binary sets only).
- `LDA (clean)` / `LDA (DP)`: the Gaussian classifier with a shared covariance, from the class sums,
  the class counts (DP: at the run's class-count sigma) and the private second moment `sum x x^T`
  (sensitivity 1 for unit x), eigenvalues floored at `--shrink` x the largest. The DP row puts the run's centroid sigma on both, which would cost a
  second centroid share of the budget.
- `nearest mean (DP)`: post-processing of the same centroid release, no extra budget: each class's
  mean is its noisy sum's direction at the synthetic texts' mean norm; a text goes to the nearest
  mean in Euclidean distance after both are centred on the synthetic texts' mean (public), with
  equal priors (what balanced accuracy rewards).
- `LDA (DP sums, public covariance)`: the same means with the covariance of the run's released
  texts' embeddings (public: post-processing), eigenvalues floored at `--shrink` x the largest.
- `centroid ranked`: `privacy.centroid_labels: ranked` (`augpe.privacy.centroids.ranked_centroid`):
  each class keeps a fixed number of the texts (even sizes, as uniform class counts generate; or
  the private class shares, as dp class counts generate) and the centroids decide which.
- `oracle`: a logistic regression trained on the clean private embeddings (not private).

Every labeller is scored by two learners trained on the relabelled texts: the embedding probe
(balanced accuracy, accuracy, macro-F1) and the bag-of-words learner (balanced accuracy), and by
its own balanced accuracy on the real test split.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from augpe.config import load_config
from augpe.embed import make_embedder
from augpe.evaluate.downstream import linear_probe
from augpe.evaluate.independent import bow_classifier
from augpe.evaluate.scores import balanced_accuracy
from augpe.privacy.centroids import ranked_centroid, shares_of
from benchmarks.bench_data import load_benchmark
from benchmarks.output_policy import policies

RESULTS = ROOT / "benchmarks" / "results"
Labeller = Callable[[np.ndarray], np.ndarray]  # unit embeddings -> class ids


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def centroid(sums: np.ndarray) -> Labeller:
    d = unit(sums)
    return lambda x: np.argmax(x @ d.T, axis=1)


def lda(sums: np.ndarray, second: np.ndarray, counts: np.ndarray, shrink: float) -> Labeller:
    """Shared-covariance Gaussian classifier from (possibly noisy) class sums, sum x x^T, counts."""
    counts = np.maximum(counts, 1.0)
    n, prior = counts.sum(), counts / counts.sum()
    mu = sums / counts[:, None]
    within = second / n - (mu.T * prior) @ mu
    vals, vecs = np.linalg.eigh((within + within.T) / 2)
    vals = np.maximum(vals, shrink * vals.max())
    a = mu @ (vecs / vals) @ vecs.T
    b = -0.5 * np.einsum("cd,cd->c", a, mu) + np.log(prior)
    return lambda x: np.argmax(x @ a.T + b, axis=1)


def public_lda(noisy_sums: np.ndarray, synth: np.ndarray, shrink: float | None) -> Labeller:
    """Post-processing of a centroid release: class means from the noisy sums' directions at the
    synthetic texts' mean norm, centred on the synthetic mean; with `shrink`, the synthetic texts'
    covariance (public) whitens the space (LDA, equal priors), else identity (nearest mean)."""
    centre = synth.mean(axis=0)
    mu = unit(noisy_sums) * np.linalg.norm(centre) - centre
    if shrink is None:
        a = mu
    else:
        cov = np.cov(synth.T)
        vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
        vals = np.maximum(vals, shrink * vals.max())
        a = mu @ (vecs / vals) @ vecs.T
    b = -0.5 * np.einsum("cd,cd->c", a, mu)
    return lambda x: np.argmax((x - centre) @ a.T + b, axis=1)


def calibrated_threshold(
    sums: np.ndarray, priv: np.ndarray, priv_y: np.ndarray, synth: np.ndarray, sigma: float, rng
) -> Labeller:
    """Binary: the centroid score's threshold where the noisy private histogram puts it."""
    d = unit(sums)

    def score(x: np.ndarray) -> np.ndarray:
        return x @ d[1] - x @ d[0]

    edges = np.quantile(score(synth), np.linspace(0, 1, 33)[1:-1])  # synthetic only: DP-safe
    bins = np.searchsorted(edges, score(priv))
    hist = np.stack([np.bincount(bins[priv_y == c], minlength=len(edges) + 1) for c in (0, 1)])
    hist = hist + rng.normal(0.0, sigma, hist.shape)
    right = [hist[0, :j].sum() + hist[1, j:].sum() for j in range(len(edges) + 2)]
    j = int(np.argmax(right))
    t = -np.inf if j == 0 else (np.inf if j > len(edges) else edges[j - 1])
    return lambda x: (score(x) >= t).astype(int)


def study_inputs(
    patterns: list[str], dataset: str, marker: str
) -> tuple[list[Path], Any, pd.DataFrame, pd.DataFrame, list[str], Any]:
    """The run folders matching `patterns` that hold `marker` (not .PRIVATE / .eval), the
    benchmark, its real splits, its class names and the runs' embedder."""
    found = {Path(r) for pat in patterns for r in glob.glob(pat)}
    runs = sorted(r for r in found if (r / marker).is_file())
    if not runs:
        raise SystemExit(f"no run folder with {marker} matches {patterns}")
    bench = load_benchmark(dataset)
    train = pd.read_csv(bench.train).fillna("")
    test = pd.read_csv(bench.test).fillna("")
    names = sorted(train[bench.label_columns[0]].astype(str).unique())
    emb = make_embedder(load_config(runs[0] / "config.yaml").embedding, show_progress=False)
    return runs, bench, train, test, names, emb


def ledger_sigma(run: Path, kind: str) -> float | None:
    events = json.loads((run / "ledger.json").read_text())["events"]
    found = [e["sigma"] for e in events if e["kind"] == kind]
    return float(found[0]) if found else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders or glob patterns (runs with centroids)")
    p.add_argument("--dataset", default="amazon")
    p.add_argument(
        "--tag", required=True, help="study: writes benchmarks/results/<dataset>/<tag>/labellers.md"
    )
    p.add_argument("--draws", type=int, default=3, help="noise draws per DP labeller and run")
    p.add_argument("--shrink", type=float, default=0.1, help="LDA eigenvalue floor, x the largest")
    p.add_argument(
        "--corpus",
        choices=("released", "every"),
        default="released",
        help="the texts relabelled: the run's released corpus (its weights), or every candidate"
        " of any iteration once, unweighted (pe.output: every)",
    )
    p.add_argument(
        "--sigma",
        type=float,
        default=None,
        help="centroid sigma for runs that made no centroid release (centroid_share 0.2 at"
        " eps 1 over 3 votes: about 7.77)",
    )
    p.add_argument(
        "--public-shrink",
        type=float,
        nargs="*",
        default=[0.05, 0.2],
        help="eigenvalue floors of the public-covariance LDA rows",
    )
    p.add_argument(
        "--hist-sigma", type=float, default=15.6, help="noise on the threshold histogram"
    )
    args = p.parse_args(argv)
    runs, bench, train, test, names, emb = study_inputs(args.runs, args.dataset, "synthetic.jsonl")
    col = bench.label_columns[0]
    priv = unit(emb.encode(list(train[bench.text_column].astype(str))))
    priv_y = np.array([names.index(v) for v in train[col].astype(str)])
    test_x = unit(emb.encode(list(test[bench.text_column].astype(str))))
    test_y = list(test[col].astype(str))
    k = len(names)
    sums = np.stack([priv[priv_y == c].sum(0) for c in range(k)])
    second = priv.T @ priv
    counts = np.bincount(priv_y, minlength=k).astype(float)
    from sklearn.linear_model import LogisticRegression

    oracle = LogisticRegression(C=10.0, max_iter=5000).fit(priv, priv_y)
    rows: dict[str, list[tuple[float, ...]]] = {}
    sigmas: list[float] = []
    test_texts = list(test[bench.text_column].astype(str))

    def learners(x, texts, weights, labels) -> tuple[float, ...]:
        y = [names[c] for c in labels]
        r = linear_probe(x, y, test_x, test_y, weights=weights)
        b = bow_classifier(texts, y, test_texts, test_y, weights=weights)
        return (r["balanced_accuracy"], r["accuracy"], r["macro_f1"], b["balanced_accuracy"])

    def own_score(f: Labeller) -> float:
        return balanced_accuracy([names[c] for c in f(test_x)], test_y)

    def score(name, x, texts, weights, labels, f: Labeller | None) -> None:
        own = np.nan if f is None else own_score(f)  # ranked labels exist only for the corpus
        rows.setdefault(name, []).append((*learners(x, texts, weights, labels), own))

    for i, run in enumerate(runs):
        if args.corpus == "released":
            released = [
                json.loads(line) for line in (run / "synthetic.jsonl").read_text().splitlines()
            ]
            texts = [r["text"] for r in released]
            w = [float(r.get("weight") or 1.0) for r in released]
            given = np.array([names.index(r["class"]) for r in released])
        else:  # each candidate of any iteration once, under its latest vote label, unweighted
            every = policies(run, names)["every candidate"]
            texts, given, w = [t for t, _, _ in every], np.array([c for _, c, _ in every]), None
        x = unit(emb.encode(texts))
        rows.setdefault(f"{args.corpus} (its own labels)", []).append(
            (*learners(x, texts, w, given), np.nan)
        )
        sigma = ledger_sigma(run, "centroids") or args.sigma
        if sigma is None:
            raise SystemExit(f"{run}: no centroids release in its ledger.json: give --sigma")
        count_sigma = ledger_sigma(run, "class_counts")
        fixed = {
            "centroid (clean; not private)": centroid(sums),
            f"LDA (clean; not private), shrink {args.shrink:g}": lda(
                sums, second, counts, args.shrink
            ),
            "oracle: logistic regression on the private records (not private)": oracle.predict,
        }
        for name, f in fixed.items():
            score(name, x, texts, w, f(x), f)
        even = shares_of(np.ones(k), len(x))  # what uniform class counts give
        shares = shares_of(counts, len(x))  # ~ what dp counts give
        score(
            "centroid ranked, even sizes (clean; not private)",
            x,
            texts,
            w,
            ranked_centroid(x, sums, even),
            None,
        )
        for draw in range(args.draws):
            rng = np.random.default_rng([i, draw, 41])  # fresh noise per run and draw
            noisy = sums + rng.normal(0.0, sigma, sums.shape)
            g = rng.normal(0.0, sigma, second.shape)
            noisy_second = second + np.triu(g) + np.triu(g, 1).T
            dp = {
                "centroid (DP, redrawn at the run's centroid sigma)": centroid(noisy),
                "nearest mean (DP, centred on the synthetic mean; same release)": public_lda(
                    noisy, x, None
                ),
            }
            ranked = {
                "centroid ranked, even sizes (DP; same release)": even,
                "centroid ranked, the private class shares (DP; as dp class counts give)": shares,
            }
            for name, sizes in ranked.items():
                score(name, x, texts, w, ranked_centroid(x, noisy, sizes), None)
            for shrink in args.public_shrink:
                dp[f"LDA (DP sums, public covariance, shrink {shrink:g}; same release)"] = (
                    public_lda(noisy, x, shrink)
                )
            if count_sigma is not None:
                noisy_counts = counts + rng.normal(0.0, count_sigma, counts.shape)
                dp["LDA (DP: sums and sum x x^T at that sigma; a second centroid share)"] = lda(
                    noisy, noisy_second, noisy_counts, args.shrink
                )
            if k == 2:
                dp[f"centroid + DP threshold (histogram sigma {args.hist_sigma:g})"] = (
                    calibrated_threshold(noisy, priv, priv_y, x, args.hist_sigma, rng)
                )
            for name, f in dp.items():
                score(name, x, texts, w, f(x), f)
        sigmas.append(sigma)
        print(
            run, {n: (round(v[-1][0], 3), round(v[-1][3], 3)) for n, v in rows.items()}, flush=True
        )
    corpus_name = {
        "released": "released texts (and weights)",
        "every": "every candidate (each text of any iteration once, unweighted)",
    }[args.corpus]
    lines = [
        f"# Labellers on the {corpus_name} of finished runs ({args.dataset}, {args.tag})",
        "",
        "`python benchmarks/labellers.py "
        + " ".join(argv if argv is not None else sys.argv[1:])
        + "`",
        "",
        (
            f"{len(runs)} runs (centroid sigma {', '.join(f'{x:.2f}' for x in sigmas)}); DP rows:"
            f" {args.draws} noise draws per run. Probe: the fast tier"
            f" and the bag-of-words learner trained on the run's {corpus_name} with"
            " these labels, scored on the real test split. Labeller on test: the labeller itself"
            " on the real test split. bal = balanced accuracy."
        ),
        "",
        (
            "| labeller | probe bal | probe accuracy | probe macro-F1 | bag-of-words bal"
            " | labeller on test (bal) |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for name, vals in rows.items():
        a = np.asarray(vals, dtype=float)
        m, s = a.mean(axis=0), a.std(axis=0)
        own = "-" if np.isnan(m[4]) else f"{m[4]:.3f}"
        lines.append(
            f"| {name} | {m[0]:.3f} ± {s[0]:.3f} | {m[1]:.3f} | {m[2]:.3f}"
            f" | {m[3]:.3f} ± {s[3]:.3f} | {own} |"
        )
    (RESULTS / args.dataset / args.tag).mkdir(parents=True, exist_ok=True)
    name = "labellers.md" if args.corpus == "released" else f"labellers-{args.corpus}.md"
    (RESULTS / args.dataset / args.tag / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
