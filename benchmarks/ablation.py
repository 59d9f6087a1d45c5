"""Utility ablation: each lever added in turn, measured by the benchmark runner.

    python benchmarks/ablation.py --dataset amazon --epsilons 0 1 --seeds 1

Runs `benchmarks/run.py` once per variant (the levers off, then each lever or combination of them),
with the demo's settings and budget unless `--set` says otherwise, all through the shared request
cache (identical requests are generated once). Each variant's results go to
benchmarks/results/<dataset>/<tag>-<variant>/, the summary to
benchmarks/results/<dataset>/ablation-<tag>/results.{md,json} (with the exact command): per
variant and eps, both learners of `augpe.evaluate` (the embedding probe and the independent
bag-of-words learner): balanced accuracy, macro-F1, accuracy (mean ± std over seeds), the gap
closed on balanced accuracy, (syn - base) / (real - base) with base = max(the run's own eps = 0
population, 1 / #classes), and what the corpus is worth in real records. Older tags, whose
results are the embedding probe only (benchmarks/results/<dataset>/<tag>/<variant>.json), are
still summarised (--summarise-only) in their old form.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

BASE = [  # every lever off
    "generation.tidy=false",
    "pe.dedup=0",
    "pe.output=selected",
    "pe.relabel=false",
    "pe.k=1",
    "privacy.keywords=false",
    "privacy.centroids=false",
    "privacy.lengths=false",
]
LEVERS = {  # each lever's settings, added to BASE (a variant may combine several)
    "tidy": ["generation.tidy=true"],
    "dedup": ["pe.dedup=0.92"],
    "union": ["pe.output=union"],
    "all": ["pe.output=all"],
    "relabel": ["pe.relabel=true"],
    "voted": ["pe.output=voted"],
    "soft": ["pe.output=soft"],  # every voted (text, class) cell >= 2 sigma, weighted by it
    "k4": ["pe.k=4"],  # each record votes 1/2 for its 4 nearest: twice the votes per candidate
    "keywords": ["privacy.keywords=true"],
    "centroids": ["privacy.centroids=true"],  # labels from the DP class centroids
    "lengths": ["privacy.lengths=true"],  # RANDOM API target lengths from the DP length histogram
}
# The demo's budget, read from its config (configs/amazon-demo.yaml), for datasets that do not
# start from that config: its pe section, class counts, generation settings and embedding length.
BUDGET_KEYS = {
    "pe": ("iterations", "samples", "variations", "k"),
    "privacy": ("class_counts",),
    "generation": ("backend", "temperature", "length", "n_parallel", "deterministic"),
    "embedding": ("max_seq_length",),
}


def demo_budget() -> list[str]:
    import yaml

    from augpe.demo import DEMO_CONFIG

    raw = yaml.safe_load(Path(DEMO_CONFIG).read_text(encoding="utf-8"))
    out = []
    for section, keys in BUDGET_KEYS.items():
        for key in keys:
            value = raw[section][key]
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for sub, v in items:
                name = f"{section}.{key}" + (f".{sub}" if sub else "")
                out.append(f"{name}={str(v).lower() if isinstance(v, bool) else v}")
    return out


# A prompt set with {keyword} slots, where the dataset's own has none (the demo's amazon_food).
KEYWORD_PROMPTS = {"amazon": "amazon_food_keywords"}
VARIANTS: list[tuple[str, list[str]]] = [
    ("base", []),
    ("+relabel", ["relabel"]),
    ("+relabel+union", ["relabel", "union"]),
    ("+relabel+all", ["relabel", "all"]),
    ("+voted", ["voted"]),
    ("+relabel+voted", ["relabel", "voted"]),
    ("+relabel+soft", ["relabel", "soft"]),
    ("+soft", ["soft"]),
    ("+soft+k4", ["soft", "k4"]),
    ("+relabel+k4", ["relabel", "k4"]),
    ("+relabel+soft+k4", ["relabel", "soft", "k4"]),
    ("+relabel+soft+k4+centroids", ["relabel", "soft", "k4", "centroids"]),
    ("+soft+k4+centroids", ["soft", "k4", "centroids"]),
    ("+relabel+soft+k4+centroids+lengths", ["relabel", "soft", "k4", "centroids", "lengths"]),
    ("+soft+k4+lengths", ["soft", "k4", "lengths"]),
    ("+tidy", ["tidy"]),
    ("+dedup", ["dedup"]),
    ("+union", ["union"]),
    ("+keywords", ["keywords"]),
    ("+relabel+union+tidy", ["relabel", "union", "tidy"]),
]


def _runs(path: Path) -> list[dict]:
    return json.loads(path.read_text())["runs"]


def _variant_file(dataset: str, tag: str, name: str) -> Path | None:
    """The variant's results: the study folder's results.json, else an older tag's file."""
    for path in (
        RESULTS / dataset / f"{tag}-{_slug(name)}" / "results.json",
        RESULTS / dataset / tag / f"{_slug(name)}.json",
    ):
        if path.is_file():
            return path
    return None


def summarise_both(dataset: str, tag: str, names: list[str], label: str) -> tuple[str, dict]:
    """Both learners per variant and eps (results written by today's run.py)."""
    from benchmarks import learner_table as lt

    head = [
        (
            "| variant | eps | seeds | n | probe bal. acc | probe gap closed | probe worth "
            "| BoW bal. acc | BoW gap closed | BoW worth | probe acc | probe macro-F1 | gen tokens |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines: list[str] = []
    out: dict[str, dict] = {}
    tail: list[str] = []
    for name in names:
        path = _variant_file(dataset, tag, name)
        if path is None:
            continue
        doc = json.loads(path.read_text())
        runs, curves = doc["runs"], doc.get("learning_curves") or {}
        syn = [r for r in runs if r["eps"] != "real"]
        real = [r for r in runs if r["eps"] == "real"][:1]
        for eps in sorted({r["eps"] for r in syn}, key=float):
            rs = [r for r in syn if r["eps"] == eps]
            cells: list[str] = []
            entry: dict[str, Any] = {"seeds": len(rs)}
            for tier in lt.TIERS:
                b = [lt._get(r, "synthetic", tier, label, "balanced_accuracy") for r in rs]
                g = [lt._get(r, "synthetic", tier, label, "gap_closed") for r in rs]
                w = lt.worth_cell(b, [], (curves.get(tier) or {}).get(label))
                cells += [lt.cell(b), lt.cell(g, pct=True), w]
                entry[tier] = {
                    "balanced_accuracy": lt.mean_std(b),
                    "gap_closed": lt.mean_std(g),
                    "worth": w,
                    "eps0": lt.mean_std(
                        [lt._get(r, "eps0", tier, label, "balanced_accuracy") for r in rs]
                    ),
                    "real": lt.mean_std(
                        [lt._get(r, "real", tier, label, "balanced_accuracy") for r in real]
                    ),
                }
            n = lt.cell([r["n"] for r in rs], 0)
            acc = lt.cell([r[f"acc_{label}"] for r in rs])
            f1 = lt.cell([r[f"f1_{label}"] for r in rs])
            tokens = lt.cell([r.get("completion_tokens") for r in rs], 0)
            lines.append(
                f"| {name} | {eps} | {len(rs)} | {n} | " + " | ".join(cells) + f" | {acc} | {f1} "
                f"| {tokens} |"
            )
            out.setdefault(name, {})[eps] = entry
        if not tail and syn:
            for tier in lt.TIERS:
                e0 = lt.cell([lt._get(r, "eps0", tier, label, "balanced_accuracy") for r in syn])
                re = lt.cell([lt._get(r, "real", tier, label, "balanced_accuracy") for r in real])
                tail.append(
                    f"- {lt.LEARNER[tier]}: eps = 0 (the first variant's own random-API "
                    f"populations) {e0}; real training split {re}"
                )
            const = doc.get("comparison_last_run", {}).get("fast", {}).get(label, {})
            if const.get("constant") is not None:
                tail.append(f"- constant answer: {const['constant']:.3f} (balanced accuracy)")
    return "\n".join(head + lines) + "\n\n" + "\n".join(tail), out


def _stat(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs, dtype=float)
    return float(a.mean()), float(a.std()) if a.size > 1 else 0.0


def summarise(dataset: str, tag: str, names: list[str], label: str) -> tuple[str, dict]:
    """The embedding probe only, from an older tag's result files."""
    rows: list[str] = []
    out: dict[str, dict] = {}
    names = [n for n in names if (RESULTS / dataset / tag / f"{_slug(n)}.json").is_file()]
    for name in names:  # variants not run (yet) are left out of the table
        runs = _runs(RESULTS / dataset / tag / f"{_slug(name)}.json")
        real = [r for r in runs if r["eps"] == "real"]
        acc_real = real[0][f"acc_{label}"] if real else float("nan")
        majority = runs[0][f"majority_{label}"]
        by_eps: dict[str, list[dict]] = {}
        for r in runs:
            if r["eps"] != "real":
                by_eps.setdefault(r["eps"], []).append(r)
        base_acc = max(_stat([r[f"acc_{label}"] for r in by_eps.get("0", [])])[0], majority)
        for eps, rs in sorted(by_eps.items()):
            acc, acc_sd = _stat([r[f"acc_{label}"] for r in rs])
            f1, f1_sd = _stat([r[f"f1_{label}"] for r in rs])
            aucs = [r[f"auc_{label}"] for r in rs if r.get(f"auc_{label}") is not None]
            auc, auc_sd = _stat(aucs) if aucs else (float("nan"), 0.0)
            gap = (acc - base_acc) / (acc_real - base_acc) if eps != "0" else float("nan")
            out.setdefault(name, {})[eps] = {
                "acc": acc,
                "acc_sd": acc_sd,
                "f1": f1,
                "f1_sd": f1_sd,
                "auc": auc,
                "auc_sd": auc_sd,
                "auc_seeds": len(aucs),
                "gap_closed": gap,
                "n": _stat([r["n"] for r in rs])[0],
                "seeds": len(rs),
                "tokens": _stat([r["completion_tokens"] for r in rs])[0],
            }
            gap_txt = "" if eps == "0" else f"{100 * gap:.0f}%"
            rows.append(
                f"| {name} | {eps} | {len(rs)} | {out[name][eps]['n']:.0f} | {acc:.3f} ± {acc_sd:.3f} "
                f"| {f1:.3f} ± {f1_sd:.3f} | {auc:.3f} ± {auc_sd:.3f} ({len(aucs)}) | {gap_txt} "
                f"| {out[name][eps]['tokens']:.0f} |"
            )
        out[name]["real"], out[name]["majority"] = acc_real, majority
    head = [
        "| variant | eps | seeds | n | accuracy | macro-F1 | AUC (seeds) | gap closed | gen tokens |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    first = out[names[0]]
    tail = [
        f"| real data | | | | {first['real']:.3f} | | | | |",
        f"| majority | | | | {first['majority']:.3f} | | | | |",
    ]
    return "\n".join(head + rows + tail), out


def _slug(name: str) -> str:
    return name.replace("+", "plus-")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", default="amazon")
    p.add_argument("--epsilons", nargs="+", default=["0", "1"])
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--tag", default="ablation")
    p.add_argument("--label", default="score", help="label column reported (amazon: score)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    p.add_argument("--summarise-only", action="store_true")
    args = p.parse_args(argv)
    names = []
    for name, levers in VARIANTS:
        budget = [] if args.dataset == "amazon" else demo_budget()
        settings = budget + BASE + [kv for lever in levers for kv in LEVERS[lever]]
        if "keywords" in levers and args.dataset in KEYWORD_PROMPTS:
            settings.append(f"generation.prompts={KEYWORD_PROMPTS[args.dataset]}")
        names.append(name)
        if args.summarise_only or (args.only and name not in args.only):
            continue
        cmd = [
            sys.executable,
            str(HERE / "run.py"),
            "--dataset",
            args.dataset,
            "--seeds",
            str(args.seeds),
            "--epsilons",
            *args.epsilons,
            "--tag",
            f"{args.tag}-{_slug(name)}",
            "--resume",
            "-q",
        ]
        for s in settings + args.set:
            cmd += ["--set", s]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    command = "python benchmarks/ablation.py " + shlex.join(
        list(argv) if argv is not None else sys.argv[1:]
    )
    new = [n for n in names if (RESULTS / args.dataset / f"{args.tag}-{_slug(n)}").is_dir()]
    if not new:  # an older tag: the embedding probe only, written where it was
        table, data = summarise(args.dataset, args.tag, names, args.label)
        md = f"# Ablation: {args.dataset}\n\n`{command}`\n\n{table}\n"
        (RESULTS / args.dataset / args.tag / "ablation.md").write_text(md, encoding="utf-8")
        (RESULTS / args.dataset / args.tag / "ablation.json").write_text(
            json.dumps({"command": command, "variants": data}, indent=1) + "\n",
            encoding="utf-8",
        )
        print(md)
        return 0
    table, data = summarise_both(args.dataset, args.tag, new, args.label)
    folder = RESULTS / args.dataset / f"ablation-{args.tag}"
    folder.mkdir(parents=True, exist_ok=True)
    md = (
        f"# Ablation: {args.dataset} ({args.tag})\n\n- command: `{command}`\n"
        f"- label column: {args.label}; each variant's own results: "
        f"`benchmarks/results/{args.dataset}/{args.tag}-<variant>/results.md`\n"
        "- balanced accuracy on the real test split, mean ± std over seeds; gap closed per seed "
        "(base = max(the run's own eps = 0 population, 1 / #classes)), then mean ± std; worth: "
        "the mean read off the learner's real-data learning curve\n\n"
        f"{table}\n"
    )
    lt_name = {"fast": "embedding probe", "bow": "bag-of-words"}
    headline = [
        f"{name}, eps = {eps}, balanced accuracy: "
        + " | ".join(
            f"{lt_name[tier]} {d[tier]['balanced_accuracy'][0]:.3f} (gap "
            + (
                f"{100 * d[tier]['gap_closed'][0]:.0f}%"
                if d[tier]["gap_closed"] is not None
                else "-"
            )
            + ")"
            for tier in ("fast", "bow")
            if d[tier]["balanced_accuracy"] is not None
        )
        for name, by_eps in data.items()
        for eps, d in by_eps.items()
    ]
    (folder / "results.md").write_text(md, encoding="utf-8")
    (folder / "results.json").write_text(
        json.dumps(
            {
                "kind": "ablation",
                "dataset": args.dataset,
                "study": f"ablation-{args.tag}",
                "command": command,
                "label": args.label,
                "headline": headline,
                "variants": data,
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
