"""The demo's headline: the run's corpus next to its eps = 0 baseline, the real-data bound and a
constant answer, under two learners (the embedding probe, which shares the pipeline's vote space,
and the bag-of-words learner, which shares nothing with it), with what it is worth in real records."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from augpe.embed import Embedder
from augpe.evaluate.learners import CURVE_TIERS, centroid_note, learner_line
from augpe.evaluate.options import EvalOptions
from augpe.evaluate.run import evaluate

__all__ = ["demo_baselines", "format_baselines"]


def demo_baselines(
    run_dir: str | Path,
    real_train_csv: str | Path,
    real_test_csv: str | Path,
    text_col: str,
    label_col: str,
    *,
    embedder: Embedder | None = None,
    out_dir: str | Path | None = None,
    max_real_train: int | None = None,
) -> dict[str, Any]:
    """The run's corpus, its eps = 0 baseline (random-API samples of state/population_00.json, no
    extra generation) and the real-data bound, on the real test split, under both learners.

    Returns {"label_column", "synthetic", "eps0", "real", "majority" (fast-tier accuracy),
    "learners": {tier: {"label", "note", "synthetic", "eps0", "real", "constant", "worth_real",
    "gap_closed", ...} on balanced accuracy}, "n_synthetic", "n_eps0", "n_real", "n_test",
    "epsilon", "degenerate"}; "eps0" is None when the run has no saved initial population.
    """
    res = evaluate(
        run_dir,
        real_test_csv,
        real_train=real_train_csv,
        text_column=text_col,
        label_columns=[label_col],
        embedder=embedder,
        out_dir=out_dir,
        options=EvalOptions(
            fidelity=out_dir is not None,
            per_iteration=out_dir is not None,
            max_real_train=max_real_train,
            plots=out_dir is not None,
        ),
    )
    by_kind = {r["kind"]: r for r in reversed(res["results"])}

    def acc(kind: str) -> float | None:
        r = by_kind.get(kind)
        return None if r is None else r["downstream"]["fast"][label_col]["accuracy"]

    syn = by_kind["synthetic"]["downstream"]["fast"][label_col]
    learners = {
        tier: {
            **{k: v for k, v in per_col[label_col].items() if k != "degenerate"},
            "label": res["learners"][tier]["label"],
            "note": centroid_note(res["learners"][tier]),
        }
        for tier, per_col in res["comparison"].items()
        if tier in CURVE_TIERS and label_col in per_col
    }
    return {
        "label_column": label_col,
        "synthetic": acc("synthetic"),
        "eps0": acc("baseline"),
        "real": acc("real"),
        "majority": syn["majority_test_accuracy"],
        "learners": learners,
        "n_synthetic": by_kind["synthetic"]["n"],
        "n_eps0": by_kind["baseline"]["n"] if "baseline" in by_kind else 0,
        "n_real": by_kind["real"]["n"] if "real" in by_kind else 0,
        "n_test": res["real_test"]["n"],
        "epsilon": res["epsilon"],
        "degenerate": syn.get("degenerate"),
    }


def format_baselines(d: Mapping[str, Any]) -> str:
    """The end of `augpe demo`: a header naming the training corpora, then one line per learner
    (the embedding probe, the bag-of-words learner) with the corpus's balanced accuracy next to
    the eps = 0 baseline, the real data, a constant answer and the real records it is worth."""
    eps = d.get("epsilon")
    eps_s = (
        "inf"
        if eps in ("inf", math.inf)
        else (f"{eps:.2f}" if isinstance(eps, (int, float)) else "?")
    )
    head = (
        f"balanced accuracy on {d['n_test']} real test texts ({d['label_column']}) after training "
        f"on: synthetic (eps={eps_s}, n={d['n_synthetic']}) | eps=0 random API (n={d['n_eps0']}) "
        f"| real data (n={d['n_real']})"
    )
    lines = [head]
    learners = d.get("learners") or {}
    width = max((len(x["label"]) for x in learners.values()), default=0)
    lines += [
        "  " + learner_line(x["label"], x, x.get("note", ""), width) for x in learners.values()
    ]
    if d.get("degenerate"):
        lines.append("  warning: " + str(d["degenerate"]))
    return "\n".join(lines)
