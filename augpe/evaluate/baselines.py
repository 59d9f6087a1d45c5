"""The demo's headline: the run's corpus next to its eps = 0 baseline and the real-data bound."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from augpe.embed import Embedder
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
    """Fast-tier accuracy of the run's corpus, its eps = 0 baseline (random-API samples of
    state/population_00.json, no extra generation) and the real-data bound, on the real test split.

    Returns {"label_column", "synthetic", "eps0", "real", "majority", "n_synthetic", "n_eps0",
    "n_real", "n_test", "epsilon"}; "eps0" is None when the run has no saved initial population.
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
    by_kind = {r["kind"]: r for r in res["results"]}

    def acc(kind: str) -> float | None:
        r = by_kind.get(kind)
        return None if r is None else r["downstream"]["fast"][label_col]["accuracy"]

    syn = by_kind["synthetic"]["downstream"]["fast"][label_col]
    return {
        "label_column": label_col,
        "synthetic": acc("synthetic"),
        "eps0": acc("baseline"),
        "real": acc("real"),
        "majority": syn["majority_test_accuracy"],
        "n_synthetic": by_kind["synthetic"]["n"],
        "n_eps0": by_kind["baseline"]["n"] if "baseline" in by_kind else 0,
        "n_real": by_kind["real"]["n"] if "real" in by_kind else 0,
        "n_test": res["real_test"]["n"],
        "epsilon": res["epsilon"],
        "degenerate": syn.get("degenerate"),
    }


def format_baselines(d: Mapping[str, Any]) -> str:
    """One line for the end of `augpe demo`: the corpus next to the eps = 0 baseline and the real bound."""

    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    eps = d.get("epsilon")
    eps_s = (
        "inf"
        if eps in ("inf", math.inf)
        else (f"{eps:.2f}" if isinstance(eps, (int, float)) else "?")
    )
    line = (
        f"downstream accuracy on {d['n_test']} real test texts ({d['label_column']}, embeddings + "
        f"logistic regression): synthetic (eps={eps_s}, n={d['n_synthetic']}) {f(d['synthetic'])} | "
        f"eps=0 random API (n={d['n_eps0']}) {f(d['eps0'])} | real data (n={d['n_real']}) {f(d['real'])} "
        f"| majority class {f(d['majority'])}"
    )
    if d.get("degenerate"):
        line += "\n  warning: " + str(d["degenerate"])
    return line
