"""The `augpe` subcommands: each turns parsed arguments into one library call and prints the result.

The work is done by the library (`augpe.runner`, `augpe.privacy`, `augpe.release`, `augpe.audit`,
`augpe.evaluate`); heavy modules are imported inside each command so `augpe --help` stays fast.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import sqlite3
from pathlib import Path

from augpe.cli.printing import print_run_summary
from augpe.config import load_config
from augpe.errors import AugpeError


def cmd_run(args: argparse.Namespace) -> int:
    from augpe.runner.compose import run
    from augpe.runner.layout import RunLayout

    if args.resume:
        run_dir = Path(args.resume)
        # The run folder's own config, as it is: the noise seed is never in it (the PRIVATE
        # folder keeps it under the run's nonce), and privacy settings changed by --set are refused.
        cfg = load_config(RunLayout.read(run_dir).config, [*args.set, f"output.dir={run_dir}"])
    else:
        if not args.config:
            raise AugpeError("augpe run: give a CONFIG.yaml (or --resume RUN_DIR)")
        cfg = load_config(args.config, args.set)
    if args.output:
        cfg.output.dir = args.output
    if args.overwrite:
        cfg.output.overwrite = True
    if args.dry_run:
        from augpe.runner.dryrun import dry_run, format_dry_run

        print(format_dry_run(dry_run(cfg)))
        return 0
    try:
        result = run(cfg, resume=bool(args.resume), show_progress=not args.quiet)
    except (OSError, sqlite3.OperationalError) as err:
        if not disk_full(err):
            raise
        from augpe.runner.layout import RunLayout

        layout = RunLayout.of(cfg)
        raise AugpeError(
            f"the disk is full ({err}): free space where the run writes (the run folder "
            f"{layout.root}, its PRIVATE folder {layout.private}, the request cache), then "
            f"continue the run with `augpe run --resume {layout.root}`"
        ) from None
    print_run_summary(result)
    return 0


def disk_full(err: BaseException) -> bool:
    """Whether `err` says the disk (or the user's quota) is full."""
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(err, sqlite3.OperationalError) and "disk is full" in str(err)


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
        print(
            f"sigma = {args.sigma} over T = {args.iterations} votes, delta = {delta:.4g}: epsilon = {eps:.4f}"
        )
    else:
        if args.epsilon is None:
            raise AugpeError(
                "augpe account: give --epsilon (to get sigma) or --sigma (to get epsilon)"
            )
        sigma = calibrate_sigma(args.epsilon, delta, args.iterations)
        mu = math.sqrt(args.iterations) / sigma if sigma > 0 else math.inf
        print(
            f"epsilon = {args.epsilon}, delta = {delta:.4g}, T = {args.iterations}: "
            f"sigma = {sigma:.4f} (rounded up; mu-GDP mu = {mu:.4f})"
        )
    return 0


def cmd_budget(args: argparse.Namespace) -> int:
    from augpe.privacy import Ledger
    from augpe.runner.layout import RunLayout

    path = RunLayout.read(args.run_dir).ledger
    if not path.is_file():
        raise AugpeError(f"augpe budget: no ledger.json in {args.run_dir}")
    ledger = Ledger.load(path)
    print(ledger.summary())
    names = ["pld"] if args.check else []
    names += [args.accountant] if args.accountant not in ("gdp", *names) else []
    for name in names:  # a second accountant on the same ledger, at the run's delta
        add_remove, replace_one = ledger.epsilon_by(name), ledger.epsilon_by(name, replace_one=True)
        print(f"accountant {name}: eps = {add_remove:.4f} (replace-one: eps = {replace_one:.4f})")
    if args.json:
        print(json.dumps(ledger.to_dict(), indent=2))
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    import shlex

    from augpe.release.export import release_dataset

    # The command as the card quotes it: its options, never the paths of this machine.
    words = ["augpe", "release", "RUN_DIR", "OUT", "--format", args.format]
    words += ["--state"] * args.state + ["--allow-non-private"] * args.allow_non_private
    words += ["--license", args.license] if args.license != "other" else []
    files = release_dataset(
        args.run_dir,
        args.out,
        args.format,
        include_state=args.state,
        private_data=args.data,
        allow_non_private=args.allow_non_private,
        card=not args.no_card,
        license=args.license,
        command=" ".join(shlex.quote(w) for w in words),
    )
    print(
        f"released {len(files)} files to {args.out} ({args.format}; verified: no private record, "
        "no clean class count, nothing from the PRIVATE folder):"
    )
    for f in files:
        print(f"  {f}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from augpe.audit import audit

    cfg = load_config(args.config, args.set)
    k: list[int] | None = [int(x) for x in args.k.split(",")] if args.k else None
    report = audit(
        cfg,
        args.canaries,
        seed=args.seed,
        k=k,
        beta=args.beta,
        workdir=args.workdir,
        keep=args.keep,
        show_progress=not args.quiet,
    )
    print(report.summary())
    if args.report:
        Path(args.report).write_text(
            json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8"
        )
        print(f"report: {args.report}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from augpe.cli.options import from_arguments
    from augpe.evaluate import (
        EvalOptions,
        default_cache_dir,
        default_out_dir,
        evaluate,
        headline,
    )
    from augpe.evaluate.learners import comparison_lines

    compare: dict[str, str] = {}
    for item in args.compare:
        name, sep, path = item.rpartition("=")
        if not sep or not name or not path:
            raise AugpeError(
                f"--compare {item!r}: write NAME=PATH, e.g. --compare eps=inf=runs/inf"
            )
        compare[name] = path
    opts = from_arguments(EvalOptions, args)
    out = Path(args.out) if args.out else default_out_dir(args.corpus)
    result = evaluate(
        args.corpus,
        args.real_test,
        real_train=args.real_train,
        real_val=args.real_val,
        text_column=args.text_column,
        label_columns=args.label_columns,
        compare=compare,
        options=opts,
        out_dir=out,
        show_progress=not args.quiet,
        cache_dir=None if args.no_cache else (args.cache_dir or default_cache_dir()),
    )
    print(f"\nevaluation: {out / 'eval.json'}, report: {out / 'report.md'}")
    for tier in opts.tiers:
        print(headline(result, tier))
    for line in comparison_lines(result):
        print(line)
    return 0
