"""`augpe eval`'s options are generated from EvalOptions: every field is an option, and what the
command line parses is the dataclass it describes."""

from __future__ import annotations

import dataclasses

import pytest

from augpe.cli.options import from_arguments, option_fields
from augpe.cli.parser import build_parser
from augpe.evaluate import EvalOptions, FinetuneSettings, LMSettings


def _parse(*flags: str) -> EvalOptions:
    args = build_parser().parse_args(["eval", "run", "--real-test", "t.csv", *flags])
    return from_arguments(EvalOptions, args)


def test_every_evaluation_setting_is_a_documented_option():
    help_text = build_parser()._subparsers._group_actions[0].choices["eval"].format_help()  # type: ignore[union-attr]
    for f, inner in option_fields(EvalOptions):
        if inner is not None and "flag" not in f.metadata:
            continue  # a settings object: its own fields are the options
        flag = f.metadata.get("flag")
        assert flag, f"EvalOptions field {f.name} has no command-line flag"
        assert f.metadata.get("help"), f"{flag} has no help text"
        assert flag in help_text


def test_no_flags_give_the_default_options():
    assert _parse() == EvalOptions()


def test_flags_set_the_fields_they_name():
    opts = _parse(
        "--tier",
        "both",
        "--no-independent",
        "--encoder",
        "tiny",
        "--epochs",
        "2",
        "--seeds",
        "2",
        "--nextword",
        "--lm-seed",
        "4",
        "--max-real-train",
        "100",
        "--probe-c",
        "0.5",
        "--no-plots",
    )
    assert opts.tiers == ("fast", "paper")
    assert opts.independent is False
    assert opts.finetune == dataclasses.replace(
        FinetuneSettings(), model="tiny", epochs=2, seeds=(0, 1)
    )
    assert opts.nextword == LMSettings(epochs=2, seed=4)  # --epochs is shared by both learners
    assert (opts.max_real_train, opts.C, opts.plots, opts.fidelity) == (100, 0.5, False, True)


def test_a_bad_tier_is_refused_by_the_parser():
    with pytest.raises(SystemExit):
        _parse("--tier", "slow")
