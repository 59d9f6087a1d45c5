"""Benchmark runner: Aug-PE at several epsilons and seeds on one dataset, one results table.

    python benchmarks/run.py --dataset amazon --epsilons 0 1 2 4 inf --seeds 3
    python benchmarks/run.py --dataset amazon --epsilons 0 1 inf --seeds 1 \
        --set pe.samples=40 --set pe.iterations=2          # a small CPU run

eps = 0 is the random API alone (uniform class sizes, no private vote: what the model writes
without private data); eps = inf is the full loop without noise (NOT private); any other eps is
a normal DP run. Every corpus is scored on the real test split by both learners of `augpe.evaluate`: the
embedding probe (fast tier: MiniLM + logistic regression, the space the pipeline votes in) and the
independent bag-of-words learner (TF-IDF 1-2-grams + balanced logistic regression); add
`--tier paper` on a GPU machine for the fine-tuned encoder. Each run is evaluated with the real
training split (all of it unless --max-real-train), so eval.json holds, per learner, the run's own
eps = 0 random-API population, the real-data bound, the constant answer, the gap closed and what
the corpus is worth in real records (the real-data learning curves are computed once per dataset
and kept in a private cache, runs/bench/eval-cache/ by default).

    python benchmarks/run.py --dataset reuters-r8 --epsilons 1 --seeds 3 --demo-budget \
        --set privacy.population_bound=5485 --tag both-learners

`--demo-budget`: the demo's budget (configs/amazon-demo.yaml: pe, class counts, generation and
embedding length settings; benchmarks/ablation.py's demo_budget) for a dataset that does not
start from the demo config; every other setting is the package default.

Writes benchmarks/results/<dataset>/<tag>/results.{md,json} (+ runs.csv, table.csv and an
accuracy-vs-eps plot), each with the exact command; run folders go to runs/bench/<dataset>-<tag>/
(git-ignored). `python benchmarks/results_index.py` regenerates benchmarks/results/INDEX.md.

The LLM and the embedder are loaded once and shared by all runs; private embeddings are computed
once per process (in memory only).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shlex
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
from benchmarks import learner_table
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
    from augpe.runner.components import build_writers
    from augpe.runner.layout import released_config

    t0 = time.perf_counter()
    data = load_private_data(cfg.data)
    sizes = allocate(cfg.pe.samples, np.ones(data.num_classes))
    descriptions = [cfg.generation.label_descriptions.get(c, c) for c in data.class_names]
    prompts = load_prompt_set(cfg.generation.prompts)
    writers = build_writers(cfg, llm, prompts, data.class_names)  # a mixture's own prompts
    apis = TextAPIs(llm, prompts, cfg.generation, descriptions, cfg.seed, writers=writers)
    samples = apis.random([c for c, n in enumerate(sizes) for _ in range(int(n))], iteration=0)
    rows = [corpus_record(s, data.class_names, data.class_labels, None) for s in samples]
    out.mkdir(parents=True, exist_ok=True)
    d = released_config(cfg)
    d["privacy"]["epsilon"] = 0.0
    d["privacy"]["keywords"] = False  # the random API alone: no DP keyword release
    d["privacy"]["centroids"] = False  # ... and no centroid labels
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
    # both learners (embedding probe, bag-of-words) on every corpus of the evaluation
    row["learners"] = learner_table.corpus_metrics(ev, bench.label_columns)
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
        "--max-real-train",
        type=int,
        default=0,
        help="real texts for the upper bound and the learning curves (0: all)",
    )
    p.add_argument(
        "--demo-budget",
        action="store_true",
        help="apply the demo config's budget (pe, class counts, generation, embedding length) "
        "to a dataset that does not start from it; the rest stays at the package defaults",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="PRIVATE eval cache (real-text embeddings, real-data results and learning curves); "
        "default: <runs-dir>/eval-cache",
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
    args.command = "python benchmarks/run.py " + shlex.join(
        list(argv) if argv is not None else sys.argv[1:]
    )
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
    if args.demo_budget and bench.base_config is None:
        from benchmarks.ablation import demo_budget

        args.set = demo_budget() + list(args.set)  # explicit --set wins (applied later)
    tag = args.tag or time.strftime("%Y%m%d-%H%M%S")
    root = args.runs_dir / f"{bench.name}-{tag}"
    tier = args.tier
    opts = EvalOptions(
        tiers=("fast",) if tier == "fast" else ("fast", "paper"),
        max_real_train=args.max_real_train or None,
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
    last_ev: dict[str, Any] = {}
    real_train = bench.train
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
                real_train=real_train,
                text_column=bench.text_column,
                label_columns=bench.label_columns,
                options=opts,
                embedder=emb,
                out_dir=out.with_name(out.name + ".eval"),
                cache_dir=args.cache_dir or args.runs_dir / "eval-cache",
            )
            last_ev = ev
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
    # the real-data bound (train on real, test on real): the evaluations measured it (once,
    # through the private eval cache); the last one's entry is the row
    real_entry = next((r for r in last_ev.get("results", []) if r.get("kind") == "real"), None)
    if real_entry is not None:
        fake_ev = {"results": [real_entry]}
    else:  # no run evaluated: measure it here
        real = load_corpus(bench.train, bench.text_column, bench.label_columns, "real data")
        real = real.subsample(args.max_real_train or None)
        test = load_corpus(test_path, bench.text_column, bench.label_columns, "real test")
        m = measure(real, test, emb.encode(test.texts), bench.label_columns, emb, opts)
        fake_ev = {"results": [{"n": len(real), "kind": "real", **m}]}
    rows.append(run_row(bench, math.nan, 0, fake_ev, 0.0, 0, 0.0, Path(bench.train), tier))
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
    write_results(bench, args, tag, rows, tier, time.perf_counter() - t_all, last_ev)
    return 0


def study_dir(results_dir: Path, dataset: str, tag: str) -> Path:
    """benchmarks/results/<dataset>/<study>/: one folder per benchmark invocation (its --tag)."""
    return results_dir / dataset / tag


def write_results(
    bench: Benchmark,
    args: argparse.Namespace,
    tag: str,
    rows: list[dict[str, Any]],
    tier: str,
    total_s: float,
    last_ev: dict[str, Any] | None = None,
) -> None:
    import pandas as pd

    folder = study_dir(args.results_dir, bench.name, tag)
    folder.mkdir(parents=True, exist_ok=True)
    cols = bench.label_columns
    ev = last_ev or {}
    curves = ev.get("learning_curves") or {}
    comp = learner_table.comparison(ev, cols) if ev else {}
    constant = {
        c: v
        for c in cols
        if (v := ((comp.get("fast") or {}).get(c) or {}).get("constant")) is not None
    }
    both = learner_table.summarise(rows, cols, curves, constant)
    head = learner_table.headline(rows, cols, curves)
    table = aggregate(rows, bench)
    pd.json_normalize(rows).to_csv(folder / "runs.csv", index=False)
    pd.DataFrame(table).to_csv(folder / "table.csv", index=False)
    plot = None
    for col in cols[:1]:
        pts = []
        for eps in sorted({r["eps"] for r in rows if r["eps"] != "real"}, key=float):
            m, s = _mean_std([r[f"acc_{col}"] for r in rows if r["eps"] == eps])
            pts.append((float(eps), m, s))
        real = next((r[f"acc_{col}"] for r in rows if r["eps"] == "real"), None)
        maj = rows[0].get(f"majority_{col}")
        path = folder / "accuracy_vs_eps.png"
        if len(pts) > 1 and plot_accuracy_vs_eps(
            {f"Aug-PE ({bench.name}, {col})": pts},
            path,
            real=real,
            majority=maj,
            title=f"{bench.name}: {col} accuracy vs eps (embedding probe)",
        ):
            plot = path.name
    settings = " ".join(f"`{s}`" for s in args.set) or "(config defaults)"
    n_real = next((r["n"] for r in rows if r["eps"] == "real"), None)
    bound = next(
        (s.split("=", 1)[1] for s in args.set if s.startswith("privacy.population_bound=")), None
    )
    base = f"`{bench.base_config.name}`" if bench.base_config else "the package defaults"
    md = [
        f"# Benchmark: {bench.name} ({tag})",
        "",
        f"- command: `{args.command}`",
        (
            f"- settings applied over {base}: {settings}; downstream tier: {tier}; real test: "
            f"`{bench.test.parent.name}/{bench.test.name}`"
        ),
        (
            f"- privacy.population_bound = {bound} (the public size of the training split), so "
            "delta = 1/(M ln M)"
            if bound
            else "- privacy.population_bound: as the base config sets it (else delta = 1e-6)"
        ),
        f"- {bench.notes}",
        f"- this invocation: {total_s:.0f} s of wall time"
        + (
            " (runs reused by --resume keep the times of the invocation that made them)"
            if args.resume
            else ""
        ),
        *([f"- note: {args.note}"] if args.note else []),
        "",
        "## Both learners (balanced accuracy on the real test split)",
        "",
        *[f"- {LEARNER_NOTE}" for LEARNER_NOTE in learner_table.LEARNER_LONG.values()],
        (
            "- eps = 0: each run's own random-API population (iteration 0, no private data); "
            f"real training split: the same learner trained on {n_real} real texts; constant "
            "answer: 1 / #classes."
        ),
        (
            "- gap closed (per seed, then mean ± std): (syn - base) / (real - base) on balanced "
            "accuracy, base = max(that run's eps = 0, constant). worth n real: the mean balanced "
            "accuracy read off the learner's real-data learning curve (16, 32, ... real texts, 5 "
            "seeded draws each; `< 16` below it, `> N` above the whole split); each seed's own "
            "in brackets."
        ),
        "",
        learner_table.markdown(both),
        "",
        *[f"- {h}" for h in head],
        "",
        "## Embedding probe, fidelity and cost",
        "",
        (
            "- accuracy / macro-F1: the embedding probe. FID / MAUVE / precision / recall (k = 3) on "
            "sentence embeddings against the real test split; words = mean words per synthetic "
            "text; gen tokens = completion tokens the LLM wrote for that run; wall s = the whole "
            "run (generation, private embedding, votes; evaluation excluded); generate s = LLM "
            "time; embed private s = paid once per process (the first DP run). MAUVE needs a few "
            "hundred texts per side: with fewer it is close to 1 for almost any corpus."
        ),
        (
            "- the runs share a request cache: a request already answered (same prompt, seed and "
            "settings) is not generated again; gen tokens and times count only what a run generated."
        ),
        "",
        markdown_table(table),
        "",
    ]
    if plot:
        md += [f"![accuracy vs eps]({plot})", ""]
    md += [
        (
            "Per run: `runs.csv`; each run's report (both learners, learning curves): "
            "`<run_dir>.eval/report.md`."
        ),
        "",
    ]
    (folder / "results.md").write_text("\n".join(md), encoding="utf-8")
    (folder / "results.json").write_text(
        json.dumps(
            {
                "kind": "benchmark",
                "dataset": bench.name,
                "study": tag,
                "command": args.command,
                "settings": args.set,
                "epsilons": [fmt_eps(e) for e in args.epsilons],
                "seeds": args.seeds,
                "tier": tier,
                "label_columns": cols,
                "notes": bench.notes,
                "wall_seconds": round(total_s, 1),
                "headline": head,
                "learners": learner_table.LEARNER_LONG,
                "comparison_last_run": comp,
                "both_learners": both,
                "table": table,
                "learning_curves": curves,
                "runs": rows,
            },
            indent=2,
            default=str,
        )
        + "\n",
        encoding="utf-8",
    )
    print("\n".join(md))
    print(f"results: {folder}/results.md / results.json")


if __name__ == "__main__":
    sys.exit(main())
