"""Benchmark runner: Aug-PE at several epsilons and seeds on one dataset, one results table.

    python benchmarks/run.py --dataset amazon --epsilons 0 1 2 4 inf --seeds 3
    python benchmarks/run.py --dataset amazon --epsilons 0 1 inf --seeds 1 \
        --set pe.samples=40 --set pe.iterations=2          # a small CPU run

eps = 0 is the random API alone (uniform class sizes, no private vote: what the model writes
without private data); eps = inf is the full loop without noise (NOT private); any other eps is
a normal DP run. Every corpus is scored on the real test split (fast tier by default; add
`--tier paper` on a GPU machine), next to the real-data bound (train on real, test on real).
Writes benchmarks/results/<dataset>-<tag>.{md,csv,json}, -runs.csv and an accuracy-vs-eps plot;
run folders go to runs/bench/<dataset>-<tag>/ (git-ignored).

The LLM and the embedder are loaded once and shared by all runs; private embeddings are computed
once per process (in memory only).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

if not __package__:  # run as `python benchmarks/run.py`: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augpe.config import Config, apply_override, load_config, parse_config
from augpe.errors import AugpeError
from augpe.evaluate import (
    CachedEmbedder,
    EvalOptions,
    FinetuneSettings,
    LMSettings,
    evaluate,
    measure,
)
from augpe.evaluate.corpus import load_corpus
from augpe.evaluate.report import fmt_eps, plot_accuracy_vs_eps
from benchmarks.bench_data import DATA, Benchmark, load_benchmark

log = logging.getLogger("augpe")
RESULTS = Path(__file__).resolve().parent / "results"
MARKER = "bench_run.json"  # written into a run folder once its generation has finished


def parse_eps(s: str) -> float:
    v = float(s)  # float("inf") works
    if math.isnan(v) or v < 0:
        raise argparse.ArgumentTypeError(f"epsilon must be >= 0 or inf, got {s}")
    return v


def make_config(bench: Benchmark, eps: float, seed: int, out: Path, overrides: list[str]) -> Config:
    eps_set = (
        ["privacy.epsilon=.inf"]
        if math.isinf(eps)
        else ([f"privacy.epsilon={eps}"] if eps > 0 else [])
    )
    base = [
        f"data.path={bench.train}",
        f"data.text_column={bench.text_column}",
        f"output.dir={out}",
        "output.overwrite=true",
        f"seed={seed}",
    ]
    if bench.label_columns:
        base.append(f"data.label_columns={json.dumps(bench.label_columns)}")
    if bench.base_config is not None:
        return load_config(bench.base_config, base + eps_set + overrides)
    raw: dict[str, Any] = json.loads(json.dumps(bench.config))
    raw.setdefault("data", {})
    for ov in base + eps_set + overrides:
        apply_override(raw, ov)
    return parse_config(raw, f"benchmark {bench.name}")


def random_api_run(cfg: Config, llm: Any, out: Path) -> dict[str, Any]:
    """The eps = 0 baseline: pe.samples RANDOM-API samples split uniformly over the classes, no vote.

    Only the class names and label values of the private data are read (they are released with
    every corpus anyway); no private text is looked at, nothing is voted, no budget is spent.
    """
    from augpe.atomic import write_json, write_jsonl
    from augpe.pe.apis import TextAPIs
    from augpe.pe.prompts import load_prompt_set
    from augpe.pe.select import allocate
    from augpe.records.data import load_private_data
    from augpe.records.sample import corpus_record
    from augpe.runner.layout import released_config

    t0 = time.perf_counter()
    data = load_private_data(cfg.data)
    sizes = allocate(cfg.pe.samples, np.ones(data.num_classes))
    descriptions = [cfg.generation.label_descriptions.get(c, c) for c in data.class_names]
    apis = TextAPIs(
        llm, load_prompt_set(cfg.generation.prompts), cfg.generation, descriptions, cfg.seed
    )
    samples = apis.random([c for c, n in enumerate(sizes) for _ in range(int(n))], iteration=0)
    rows = [corpus_record(s, data.class_names, data.class_labels, None) for s in samples]
    out.mkdir(parents=True, exist_ok=True)
    d = released_config(cfg)
    d["privacy"]["epsilon"] = 0.0
    (out / "config.yaml").write_text(yaml.safe_dump(d, sort_keys=False), encoding="utf-8")
    write_jsonl(out / "synthetic.jsonl", rows)
    summary = {
        "corpus": str(out / "synthetic.jsonl"),
        "samples": len(rows),
        "epsilon": 0.0,
        "target_samples_per_class": dict(zip(data.class_names, sizes.tolist())),
        "iterations": 0,
        "generation": apis.stats.to_dict(),
        "wall_seconds": round(time.perf_counter() - t0, 3),
        "note": "eps = 0 baseline: random API only, no private data used",
    }
    write_json(out / "summary.json", summary)
    return summary


def same_config(stored: Any, cfg: Config) -> bool:
    """Whether a finished run was made with `cfg`. The stored config is read through today's
    config model, so a setting added since (at its default) does not discard a finished run."""
    try:
        return parse_config(stored).dump() == cfg.dump()
    except AugpeError:
        return False


def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=0)) if len(a) > 1 else 0.0


def _cell(values: list[Any], digits: int = 3) -> str:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return "-"
    m, s = _mean_std(vals)
    return f"{m:.{digits}f}" + (f" ± {s:.{digits}f}" if len(vals) > 1 else "")


def run_row(
    bench: Benchmark,
    eps: float,
    seed: int,
    ev: dict[str, Any],
    wall: float,
    tokens: int,
    eval_s: float,
    out: Path,
    tier: str,
) -> dict[str, Any]:
    r = ev["results"][0]
    f = r.get("fidelity") or {}
    gen_s, priv_s = stage_seconds(out, wall)
    row: dict[str, Any] = {"dataset": bench.name, "eps": fmt_eps(eps), "seed": seed, "n": r["n"]}
    for col in bench.label_columns:
        d = r["downstream"][tier][col]
        row[f"acc_{col}"] = d["accuracy"]
        row[f"f1_{col}"] = d["macro_f1"]
        row[f"auc_{col}"] = d.get("auc")
        row[f"majority_{col}"] = d["majority_test_accuracy"]
    if r.get("nextword"):
        row["nextword_acc"] = r["nextword"]["accuracy"]
        row["perplexity"] = r["nextword"]["perplexity"]
    row.update(
        {
            "fid": f.get("fid"),
            "mauve": f.get("mauve"),
            "precision": f.get("precision"),
            "recall": f.get("recall"),
            "words_mean": (f.get("length") or {}).get("synthetic", {}).get("mean"),
            "wall_s": round(wall, 1),
            "generate_s": round(gen_s, 1),
            "embed_private_s": round(priv_s, 1),
            "eval_s": round(eval_s, 1),
            "completion_tokens": tokens,
            "tok_per_s": round(tokens / gen_s, 1) if gen_s > 0 else None,
            "run_dir": str(out),
        }
    )
    return row


def stage_seconds(out: Path, wall: float) -> tuple[float, float]:
    """(generation, private embedding) seconds of a run, from its timings.json.

    The eps = 0 baseline has no timings: all its wall time is generation. Private embeddings are
    computed once per process, so only the first DP run of a benchmark pays for them.
    """
    path = out / "timings.json"
    if not path.is_file():
        return wall, 0.0
    totals = json.loads(path.read_text(encoding="utf-8")).get("totals", {})
    return float(totals.get("generate", wall)), float(totals.get("embed_private", 0.0))


def aggregate(rows: list[dict[str, Any]], bench: Benchmark) -> list[dict[str, str]]:
    table = []
    order = sorted({r["eps"] for r in rows if r["eps"] != "real"}, key=lambda e: float(e))
    for eps in order + (["real"] if any(r["eps"] == "real" for r in rows) else []):
        rs = [r for r in rows if r["eps"] == eps]
        t: dict[str, str] = {
            "eps": "real data" if eps == "real" else eps,
            "seeds": str(len(rs)),
            "n": _cell([r["n"] for r in rs], 0),
        }
        for col in bench.label_columns:
            t[f"{col} acc"] = _cell([r[f"acc_{col}"] for r in rs])
            t[f"{col} macro-F1"] = _cell([r[f"f1_{col}"] for r in rs])
        if any("nextword_acc" in r for r in rs):
            t["next-word acc"] = _cell([r.get("nextword_acc") for r in rs])
            t["perplexity"] = _cell([r.get("perplexity") for r in rs], 1)
        for k, name, dg in [
            ("fid", "FID", 4),
            ("mauve", "MAUVE", 3),
            ("precision", "precision", 3),
            ("recall", "recall", 3),
            ("words_mean", "words", 1),
            ("wall_s", "wall s", 0),
            ("generate_s", "generate s", 0),
            ("embed_private_s", "embed private s", 0),
            ("completion_tokens", "gen tokens", 0),
            ("tok_per_s", "tok/s", 1),
        ]:
            t[name] = _cell([r.get(k) for r in rs], dg)
        table.append(t)
    return table


def markdown_table(table: list[dict[str, str]]) -> str:
    if not table:
        return ""
    head = list(table[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(t.get(h, "-") for h in head) + " |" for t in table]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--dataset",
        required=True,
        help="amazon, 20newsgroups, reuters-r8, yelp, openreview, pubmed",
    )
    p.add_argument(
        "--source", type=Path, help="folder of the published files (yelp, openreview, pubmed)"
    )
    p.add_argument("--epsilons", nargs="+", type=parse_eps, default=[0.0, 1.0, 2.0, 4.0, math.inf])
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per epsilon")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override (repeatable)",
    )
    p.add_argument(
        "--tier", choices=["fast", "paper"], default="fast", help="downstream tier in the table"
    )
    p.add_argument(
        "--encoder", default="roberta-base", help="papers' tier model ('tiny' for a CPU smoke run)"
    )
    p.add_argument("--epochs", type=int, default=3, help="papers' tier / next-word epochs")
    p.add_argument("--lm", default="tiny", help="next-word LM (pubmed): 'tiny' or a HF name / path")
    p.add_argument(
        "--max-real-train", type=int, default=2000, help="real texts for the upper bound (0: all)"
    )
    p.add_argument(
        "--max-real-test", type=int, default=0, help="subsample the real test split (0: all)"
    )
    p.add_argument("--tag", default=None, help="name of this benchmark (default: a timestamp)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs/bench"))
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    p.add_argument("--data-dir", type=Path, default=DATA)
    p.add_argument(
        "--resume",
        action="store_true",
        help="reuse runs of the same --tag whose config is unchanged (re-evaluates them)",
    )
    p.add_argument("--note", default="", help="a line for the results table (machine, load, ...)")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="[bench %(asctime)s] %(message)s", datefmt="%H:%M:%S"
    )
    for noisy in ("httpx", "sentence_transformers", "faiss", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return _main(args)
    except AugpeError as err:
        print(f"benchmarks/run.py: error: {err}", file=sys.stderr)
        return err.exit_code


def _main(args: argparse.Namespace) -> int:
    from augpe.embed import SentenceTransformerEmbedder
    from augpe.runner.components import build_llm
    from augpe.runner.compose import run

    bench = load_benchmark(args.dataset, args.source, args.data_dir)
    tag = args.tag or time.strftime("%Y%m%d-%H%M%S")
    root = args.runs_dir / f"{bench.name}-{tag}"
    tier = args.tier
    opts = EvalOptions(
        tiers=("fast",) if tier == "fast" else ("fast", "paper"),
        per_iteration=True,
        plots=True,
        finetune=FinetuneSettings(model=args.encoder, epochs=args.epochs, seeds=(0,)),
        nextword=LMSettings(model=args.lm, epochs=args.epochs)
        if bench.task == "nextword"
        else None,
    )
    test_path = bench.test
    if args.max_real_test:
        test = load_corpus(
            bench.test, bench.text_column, bench.label_columns, "real test"
        ).subsample(args.max_real_test)
        test_path = root / "real-test-subsample.csv"
        root.mkdir(parents=True, exist_ok=True)
        import pandas as pd

        pd.DataFrame({bench.text_column: test.texts, **test.labels}).to_csv(test_path, index=False)
    first = make_config(bench, 1.0, 0, root / "probe", args.set)
    emb = CachedEmbedder(
        SentenceTransformerEmbedder(
            first.embedding.model,
            first.embedding.device,
            first.embedding.batch_size,
            show_progress=not args.quiet,
        )
    )
    llm = None
    rows: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    for seed in range(args.seeds):
        for eps in args.epsilons:
            out = root / f"eps{fmt_eps(eps)}-seed{seed}"
            cfg = make_config(bench, eps, seed, out, args.set)
            marker = out / MARKER
            done = json.loads(marker.read_text()) if args.resume and marker.is_file() else None
            if done is not None and same_config(done.get("config"), cfg):
                log.info(
                    "=== %s eps=%s seed=%d: reusing the finished run in %s",
                    bench.name,
                    fmt_eps(eps),
                    seed,
                    out,
                )
                wall, tokens = float(done["wall_s"]), int(done["completion_tokens"])
            else:
                if llm is None:
                    # behind the request cache: the runs of one seed share their initial population
                    llm = build_llm(cfg, show_progress=not args.quiet)
                tokens0 = llm.usage.completion_tokens
                log.info("=== %s eps=%s seed=%d -> %s", bench.name, fmt_eps(eps), seed, out)
                t0 = time.perf_counter()
                if eps == 0:
                    random_api_run(cfg, llm, out)
                else:
                    run(cfg, show_progress=not args.quiet, llm=llm, embedder=emb)
                wall = time.perf_counter() - t0
                tokens = llm.usage.completion_tokens - tokens0
                marker.write_text(
                    json.dumps({"config": cfg.dump(), "wall_s": wall, "completion_tokens": tokens})
                )
            t1 = time.perf_counter()
            ev = evaluate(
                out,
                test_path,
                text_column=bench.text_column,
                label_columns=bench.label_columns,
                options=opts,
                embedder=emb,
                out_dir=out.with_name(out.name + ".eval"),
            )
            rows.append(
                run_row(bench, eps, seed, ev, wall, tokens, time.perf_counter() - t1, out, tier)
            )
            log.info(
                "eps=%s seed=%d: %s",
                fmt_eps(eps),
                seed,
                {
                    k: v
                    for k, v in rows[-1].items()
                    if k.startswith(("acc_", "fid", "mauve", "nextword"))
                },
            )
    # the real-data bound: train on real, test on real
    real = load_corpus(bench.train, bench.text_column, bench.label_columns, "real data")
    real = real.subsample(args.max_real_train or None)
    test = load_corpus(test_path, bench.text_column, bench.label_columns, "real test")
    t1 = time.perf_counter()
    m = measure(real, test, emb.encode(test.texts), bench.label_columns, emb, opts)
    fake_ev = {"results": [{"n": len(real), **m}]}
    rows.append(
        run_row(
            bench, math.nan, 0, fake_ev, 0.0, 0, time.perf_counter() - t1, Path(bench.train), tier
        )
    )
    rows[-1].update(
        {
            "eps": "real",
            "seed": "-",
            "wall_s": None,
            "generate_s": None,
            "embed_private_s": None,
            "completion_tokens": None,
            "tok_per_s": None,
        }
    )
    if llm is not None:
        llm.close()
    write_results(bench, args, tag, rows, tier, time.perf_counter() - t_all)
    return 0


def write_results(
    bench: Benchmark,
    args: argparse.Namespace,
    tag: str,
    rows: list[dict[str, Any]],
    tier: str,
    total_s: float,
) -> None:
    import pandas as pd

    res = args.results_dir
    res.mkdir(parents=True, exist_ok=True)
    stem = res / f"{bench.name}-{tag}"
    table = aggregate(rows, bench)
    pd.DataFrame(rows).to_csv(f"{stem}-runs.csv", index=False)
    pd.DataFrame(table).to_csv(f"{stem}.csv", index=False)
    plot = None
    for col in bench.label_columns[:1]:
        series: dict[str, list[tuple[float, float, float]]] = {}
        pts = []
        for eps in sorted({r["eps"] for r in rows if r["eps"] != "real"}, key=float):
            m, s = _mean_std([r[f"acc_{col}"] for r in rows if r["eps"] == eps])
            pts.append((float(eps), m, s))
        series[f"Aug-PE ({bench.name}, {col})"] = pts
        real = next((r[f"acc_{col}"] for r in rows if r["eps"] == "real"), None)
        maj = rows[0].get(f"majority_{col}")
        path = Path(f"{stem}-accuracy_vs_eps.png")
        if plot_accuracy_vs_eps(
            series, path, real=real, majority=maj, title=f"{bench.name}: {col} accuracy vs eps"
        ):
            plot = path.name
    settings = " ".join(f"`{s}`" for s in args.set) or "(config defaults)"
    md = [
        f"# Benchmark: {bench.name} ({tag})",
        "",
        f"- command: `python benchmarks/run.py --dataset {args.dataset} --epsilons "
        f"{' '.join(fmt_eps(e) for e in args.epsilons)} --seeds {args.seeds}"
        + "".join(f" --set {s}" for s in args.set)
        + (f" --tier {tier}" if tier != "fast" else "")
        + "`",
        f"- overrides: {settings}; downstream tier: {tier}; real test: `{bench.test}`",
        (
            f"- eps = 0: random API only (uniform classes, no vote); inf: no noise (not private); "
            f"real data: trained on {'at most ' + str(args.max_real_train) if args.max_real_train else 'all'} "
            "real training texts (the upper bound)."
        ),
        (
            "- FID / MAUVE / precision / recall (k = 3) on sentence embeddings against the real test split; "
            "words = mean words per synthetic text; gen tokens = completion tokens the LLM wrote for that run; "
            "wall s = the whole run (generation, private embedding, votes; evaluation excluded); "
            "generate s = LLM time, tok/s = gen tokens / generate s; embed private s = embedding the "
            "private records, paid once per process (the first DP run). MAUVE needs a few hundred texts per "
            "side (n/10 buckets): with fewer it is close to 1 for almost any corpus."
        ),
        (
            "- the runs share a request cache: a request already answered (same prompt, seed and "
            "settings) is not generated again, so the DP runs of one seed generate the initial "
            "population once (the first of them pays it) and the variations of parents they "
            "select alike once; gen tokens, generate s and wall s count only what a run generated."
        ),
        (
            "- the fast tier's C is chosen by 5-fold cross-validation on each training corpus; the "
            "majority class of the real test split scores the accuracy printed under the plot."
        ),
        f"- this invocation: {total_s:.0f} s"
        + (
            " (runs reused by --resume keep the times of the invocation that made them)"
            if args.resume
            else ""
        )
        + f"; {bench.notes}",
        *([f"- note: {args.note}"] if args.note else []),
        "",
        markdown_table(table),
        "",
    ]
    if plot:
        md += [f"![accuracy vs eps]({plot})", ""]
    md += [
        "Per run: "
        + f"`{Path(str(stem) + '-runs.csv').name}`; each run's report: `<run_dir>.eval/report.md`.",
        "",
    ]
    Path(f"{stem}.md").write_text("\n".join(md), encoding="utf-8")
    Path(f"{stem}.json").write_text(
        json.dumps(
            {
                "dataset": bench.name,
                "tag": tag,
                "settings": args.set,
                "epsilons": [fmt_eps(e) for e in args.epsilons],
                "seeds": args.seeds,
                "tier": tier,
                "table": table,
                "runs": rows,
            },
            indent=2,
            default=str,
        )
        + "\n",
        encoding="utf-8",
    )
    print("\n".join(md))
    print(f"results: {stem}.md / .csv / -runs.csv")


if __name__ == "__main__":
    sys.exit(main())
