"""Output policies compared on finished runs, at no generation and no privacy cost.

    python benchmarks/output_policy.py "runs/bench/amazon-abl2-plus-relabel/eps1-seed*"

Every policy of `pe.output` is post-processing of the noisy votes a run already stored
(state/population_*.json, state/votes_*.json), so each can be re-derived from one finished run
exactly as the loop would have released it: `released` (the run's own corpus), `all` (the last
population), `voted` (every candidate of any iteration whose latest noisy vote is >= 2 sigma, or
>= 1 sigma, and at least one vote: `augpe.pe.select.min_votes_for`, the loop's own rule). With a cross-class vote (`pe.relabel`) a candidate's label is its noisy argmax
(`augpe.pe.loop.relabel`); `every candidate` (`pe.output: every`) is each text of any
iteration once, under its latest label, unweighted (one row per text); `eps = 0: iteration 0's population` is the random-API texts
and their variations before the first vote, the corpus the model writes without private data. Each corpus is scored on the real test split by both
learners: the fast-tier embedding probe (accuracy, macro-F1, AUC, balanced accuracy) and the
independent bag-of-words learner (balanced accuracy), weighted where the policy is. Writes benchmarks/results/<dataset>/<tag>/output-policy.md.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from augpe.embed.sentence import SentenceTransformerEmbedder
from augpe.evaluate.downstream import linear_probe
from augpe.evaluate.independent import bow_classifier
from augpe.pe.loop import Candidates, relabel
from augpe.pe.output import AllVoted, Soft, Voted
from augpe.pe.select import min_votes_for
from augpe.records.sample import Sample, class_array
from benchmarks.bench_data import load_benchmark

RESULTS = ROOT / "benchmarks" / "results"


Corpus = list[tuple[str, int, float]]  # (text, class id, weight)


def policies(run: Path, class_names: list[str]) -> dict[str, Corpus]:
    """(text, class id, weight) corpora of each output policy, from the run's stored populations
    and noisy votes. Unweighted policies have weight 1; `soft` policies put a text under every
    class whose noisy cell clears the threshold, weighted by that cell."""
    state = run / "state"
    latest = AllVoted(least=-np.inf)
    cells = Soft(0.0, len(class_names), cross=False)  # candidate -> its latest row of noisy cells
    sigma = 0.0
    last: list[Sample] = []
    last_cells = Soft(0.0, len(class_names), cross=False)
    t = 1
    while (state / f"votes_{t:02d}.json").is_file():
        pop = json.loads((state / f"population_{t - 1:02d}.json").read_text())["samples"]
        gen = Candidates([Sample.from_dict(s) for s in pop])
        stored = json.loads((state / f"votes_{t:02d}.json").read_text())
        noisy, sigma = np.asarray(stored["noisy"]), max(sigma, float(stored["sigma"]))
        voters = class_array(gen.samples)
        cross = noisy.size != len(gen.samples)  # the cross-class vote: (candidate, class) bins
        cast = Voted(gen.samples, noisy, voters)
        cells.cross = cross
        last_cells = Soft(0.0, len(class_names), cross)
        if cross:
            gen, noisy, voters = relabel(gen, noisy, voters)
        ranked = Voted(gen.samples, noisy, voters)
        for policy in (cells, last_cells, latest):
            policy.observe(cast, ranked, [])
        last = gen.samples
        t += 1
    released = [json.loads(line) for line in (run / "synthetic.jsonl").read_text().splitlines()]
    out: dict[str, Corpus] = {
        "released": [(r["text"], class_names.index(r["class"]), 1.0) for r in released],
        "all (last population)": [(s.text, s.class_id, 1.0) for s in last],
    }
    out["every candidate"] = [(s.text, s.class_id, 1.0) for s, _ in latest.voted.values()]
    first = json.loads((state / "population_00.json").read_text())["samples"]
    out["eps = 0: iteration 0's population (no private data)"] = [
        (s["text"], s["class_id"], 1.0) for s in first
    ]
    for k in (2.0, 1.0):
        least = min_votes_for(sigma, k)
        out[f"voted >= {k:g} sigma"] = [
            (s.text, s.class_id, 1.0) for s, v in latest.voted.values() if v >= least
        ]
    for k in (0.0, 1.0, 2.0):
        least = min_votes_for(sigma, k) if k else 1e-9
        for name, pool in (("last", last_cells), ("every iteration", cells)):
            pool.least = least
            soft = pool.result()
            out[f"soft {name} >= {k:g} sigma"] = [
                (x.text, x.class_id, soft.votes[x.id]) for x in soft.output
            ]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders or glob patterns")
    p.add_argument("--dataset", default="amazon")
    p.add_argument("--tag", required=True, help="the study the runs belong to")
    args = p.parse_args(argv)
    bench = load_benchmark(args.dataset)
    col = bench.label_columns[0]
    names = sorted(pd.read_csv(bench.train)[col].astype(str).unique())
    test = pd.read_csv(bench.test).fillna("")
    emb = SentenceTransformerEmbedder("default", "cpu", 64, show_progress=False)
    test_emb = emb.encode(list(test[bench.text_column].astype(str)))
    test_y = list(test[col].astype(str))
    test_texts = list(test[bench.text_column].astype(str))
    rows: dict[str, list[tuple[float, float, float, int]]] = {}
    runs = sorted({Path(r) for pat in args.runs for r in glob.glob(pat)})
    for run in runs:
        for name, corpus in policies(run, names).items():
            if len({c for _, c, _ in corpus}) < 2:
                continue
            x = emb.encode([t for t, _, _ in corpus])
            weights = [w for _, _, w in corpus]
            r = linear_probe(
                x,
                [names[c] for _, c, _ in corpus],
                test_emb,
                test_y,
                weights=None if len(set(weights)) == 1 else weights,
            )
            b = bow_classifier(
                [t for t, _, _ in corpus],
                [names[c] for _, c, _ in corpus],
                test_texts,
                test_y,
                weights=None if len(set(weights)) == 1 else weights,
            )
            key = f"{run.parent.name} | {name}"
            got = (
                r["accuracy"],
                r["macro_f1"],
                r["auc"] if r["auc"] is not None else float("nan"),
                r["balanced_accuracy"],
                b["balanced_accuracy"],
                len(corpus),
            )
            rows.setdefault(key, []).append(got)
            print(run, name, *got, flush=True)
    lines = [
        f"# Output policies on finished runs ({args.dataset})",
        "",
        "`python benchmarks/output_policy.py " + " ".join(argv or sys.argv[1:]) + "`",
        "",
        (
            "| runs | policy | seeds | n | probe accuracy | probe macro-F1 | probe AUC "
            "| probe bal. acc | bag-of-words bal. acc |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, vals in rows.items():
        a = np.asarray(vals, dtype=float)
        m, s = a.mean(axis=0), a.std(axis=0)
        lines.append(
            f"| {key} | {len(vals)} | {m[5]:.0f} | {m[0]:.3f} ± {s[0]:.3f} "
            f"| {m[1]:.3f} ± {s[1]:.3f} | {m[2]:.3f} ± {s[2]:.3f} "
            f"| {m[3]:.3f} ± {s[3]:.3f} | {m[4]:.3f} ± {s[4]:.3f} |"
        )
    (RESULTS / args.dataset / args.tag).mkdir(parents=True, exist_ok=True)
    (RESULTS / args.dataset / args.tag / "output-policy.md").write_text(
        "\n".join(lines) + "\n", encoding="utf-8"
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
