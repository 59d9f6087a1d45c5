"""Prompt lab: what a prompt set makes the model write, before any private data is used.

    python benchmarks/prompt_lab.py --datasets reuters-r8 election-tweets amazon \
        --prompts generic prompts/candidate.yaml --per-class 16

For each dataset and prompt set, the RANDOM API writes `--per-class` texts per class (the
dataset's public class descriptions, the demo's generation settings, the embedded model), and
both learners of `augpe.evaluate` are trained on them and scored on the real test split: the
independent bag-of-words learner and the MiniLM probe. This is the eps = 0 arm of a run, the
population Private Evolution starts from; a prompt set that writes realistic examples of each class
scores above the constant answer's 0.5 balanced accuracy here. Two texts per class are printed.

Writes benchmarks/results/<dataset>/prompt-lab-<tag>/results.{md,json}, with the command that
made them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

if not __package__:  # run as `python benchmarks/prompt_lab.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augpe.config import load_config
from augpe.evaluate.independent import bow_classifier
from augpe.llm import make_llm
from augpe.pe.apis import TextAPIs
from augpe.pe.prompts import load_prompt_set
from benchmarks.ablation import demo_budget
from benchmarks.bench_data import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _descriptions(bench, names: list[str]) -> list[str]:
    if bench.base_config is not None:
        cfg = load_config(bench.base_config)
        given = cfg.generation.label_descriptions or {}
    else:
        given = bench.config.get("generation", {}).get("label_descriptions", {})
    return [given.get(n, n) for n in names]


def _probe(train_x, train_y, test_x, test_y, embed) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    clf = LogisticRegression(max_iter=2000, class_weight="balanced")
    clf.fit(embed(train_x), train_y)
    return float(balanced_accuracy_score(test_y, clf.predict(embed(test_x))))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["reuters-r8", "election-tweets", "amazon"])
    ap.add_argument("--prompts", nargs="+", default=["generic"], help="prompt set names or files")
    ap.add_argument("--per-class", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-test", type=int, default=1000)
    ap.add_argument("--tag", default="lab")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    command = "python benchmarks/prompt_lab.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )

    cfg = load_config(ROOT / "configs" / "amazon-demo.yaml", demo_budget() + args.set)
    llm = make_llm(cfg.generation, show_progress=False)
    from augpe.embed.sentence import SentenceTransformerEmbedder

    st = SentenceTransformerEmbedder("default", show_progress=False, max_seq_length=128)

    def embed(texts):
        e = st.encode(list(texts))
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    for name in args.datasets:
        bench = load_benchmark(name)
        label_col = bench.label_columns[0]
        train = pd.read_csv(bench.train)
        test = pd.read_csv(bench.test)
        test = test.sample(min(args.max_test, len(test)), random_state=0)
        names = sorted(set(train[label_col].astype(str)))
        descriptions = _descriptions(bench, names)
        test_x = test[bench.text_column].astype(str).tolist()
        test_y = test[label_col].astype(str).tolist()
        lines = [
            f"# Prompt lab: {name}",
            "",
            f"- command: `{command}`",
            (
                f"- {args.per_class} RANDOM API texts per class, seed {args.seed}; scored on "
                f"{len(test_x)} real test texts (balanced accuracy; constant answer 1/classes)"
            ),
            "",
            "| prompt set | bag-of-words | MiniLM probe | kept | words/text | seconds |",
            "|---|---|---|---|---|---|",
        ]
        examples: list[str] = []
        rows: list[dict[str, object]] = []
        for ps_name in args.prompts:
            ps = load_prompt_set(ps_name)
            apis = TextAPIs(llm, ps, cfg.generation, descriptions, seed=args.seed)
            t0 = time.perf_counter()
            samples = apis.random([c for c in range(len(names)) for _ in range(args.per_class)])
            secs = time.perf_counter() - t0
            keep = ROOT / "runs" / "prompt-lab" / f"{name}-{args.tag}-{ps.name}.jsonl"
            keep.parent.mkdir(parents=True, exist_ok=True)
            keep.write_text(
                "".join(
                    json.dumps({"text": s.text, "label": names[s.class_id]}) + "\n" for s in samples
                ),
                encoding="utf-8",
            )
            xs = [s.text for s in samples]
            ys = [names[s.class_id] for s in samples]
            bow = bow_classifier(xs, ys, test_x, test_y)["balanced_accuracy"]
            probe = _probe(xs, ys, test_x, test_y, embed)
            words = np.mean([len(x.split()) for x in xs])
            lines.append(
                f"| {ps.name} | {bow:.3f} | {probe:.3f} | {len(xs)} | {words:.0f} | {secs:.0f} |"
            )
            print(lines[-1], flush=True)
            rows.append({"prompts": ps.name, "bow": bow, "probe": probe, "n": len(xs)})
            examples.append(f"\n## {ps.name}\n")
            for c, n in enumerate(names):
                for s in [s for s in samples if s.class_id == c][:2]:
                    examples.append(f"- **{n}**: {s.text[:300]!r}")
        out = RESULTS / name / f"prompt-lab-{args.tag}" / "results.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines + ["", "# Examples"] + examples) + "\n", encoding="utf-8")
        headline = [
            f"{r['prompts']}: bag-of-words {r['bow']:.3f} | embedding probe {r['probe']:.3f} "
            f"({r['n']} eps = 0 texts)"
            for r in rows
        ]
        doc = {"kind": "prompt-lab", "command": command, "rows": rows, "headline": headline}
        out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
