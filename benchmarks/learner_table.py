"""Both learners in one table: what a benchmark row reads from `augpe.evaluate`'s eval.json.

Every corpus of a run (the synthetic corpus, the run's own eps = 0 random-API population, the real
training split) is scored by the two learners `augpe.evaluate` measures:

- the embedding probe (`fast` tier): MiniLM sentence embeddings + logistic regression, the space
  in which the private records vote (and, with `privacy.centroids`, the corpus is labelled);
- the bag-of-words learner (`bow` tier, `augpe.evaluate.independent`): TF-IDF word 1-2-grams +
  logistic regression with balanced class weights, a feature space no pipeline step used.

Nothing here re-trains a learner: the numbers are eval.json's. Per seed, gap closed is eval.json's
(syn - base) / (real - base) on balanced accuracy, base = max(that run's eps = 0 population, the
constant answer 1 / #classes); "worth n real records" reads the mean balanced accuracy off the
learner's real-data learning curve (the same curve for every seed: same real files, same draws).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from augpe.evaluate.worth import format_worth, gap_closed, worth_real

TIERS = ("fast", "bow")
LEARNER = {
    "fast": "embedding probe",
    "bow": "bag-of-words",
}
LEARNER_LONG = {
    "fast": "embedding probe: MiniLM sentence embeddings + logistic regression (C by 5-fold CV on "
    "the training corpus); the space the pipeline votes (and, with centroids, labels) in",
    "bow": "bag-of-words (independent): TF-IDF of word 1-2-grams + logistic regression, balanced "
    "class weights, C = 1 fixed; shares no feature space with the pipeline",
}
KEYS = ("balanced_accuracy", "macro_f1", "accuracy", "auc", "gap_closed", "worth_real")
KINDS = {"synthetic": "synthetic", "baseline": "eps0", "real": "real"}


def corpus_metrics(ev: Mapping[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    """{"synthetic" | "eps0" | "real": {"n": n, tier: {col: {metric: value}}}} of one eval.json."""
    out: dict[str, Any] = {}
    for r in ev.get("results", []):
        kind = KINDS.get(r.get("kind", ""))
        if kind is None or kind in out:  # the first corpus of each kind
            continue
        entry: dict[str, Any] = {"n": r.get("n")}
        for tier in TIERS:
            per = (r.get("downstream") or {}).get(tier) or {}
            entry[tier] = {col: {k: per[col].get(k) for k in KEYS} for col in columns if col in per}
        out[kind] = entry
    return out


def comparison(ev: Mapping[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    """{tier: {col: {eps0, real, constant, base}}} from eval.json's comparison."""
    comp = ev.get("comparison") or {}
    return {
        tier: {
            col: {
                k: (comp.get(tier) or {}).get(col, {}).get(k)
                for k in ("eps0", "real", "constant", "base")
            }
            for col in columns
        }
        for tier in TIERS
    }


def _vals(xs: Sequence[Any]) -> list[float]:
    return [float(x) for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]


def mean_std(xs: Sequence[Any]) -> tuple[float, float, int] | None:
    v = _vals(xs)
    if not v:
        return None
    a = np.asarray(v)
    return float(a.mean()), float(a.std()) if a.size > 1 else 0.0, int(a.size)


def cell(xs: Sequence[Any], digits: int = 3, pct: bool = False) -> str:
    ms = mean_std(xs)
    if ms is None:
        return "-"
    m, s, k = ms
    if pct:
        return f"{100 * m:.0f}%" + (f" ± {100 * s:.0f}%" if k > 1 else "")
    return f"{m:.{digits}f}" + (f" ± {s:.{digits}f}" if k > 1 else "")


def _get(row: Mapping[str, Any], kind: str, tier: str, col: str, key: str) -> Any:
    return (((row.get("learners") or {}).get(kind) or {}).get(tier) or {}).get(col, {}).get(key)


def worth_cell(
    values: Sequence[Any], per_seed: Sequence[Any], curve: Mapping[str, Any] | None
) -> str:
    """The worth of the mean balanced accuracy on the curve, and each seed's own in brackets."""
    ms = mean_std(values)
    if ms is None or not curve:
        return "-"
    at_mean = format_worth(worth_real(dict(curve), ms[0]))
    seeds = [format_worth(w) for w in per_seed if w]
    return at_mean + (f" ({', '.join(seeds)})" if len(seeds) > 1 else "")


def summarise(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    curves: Mapping[str, Mapping[str, Any]],
    constant: Mapping[str, float],
) -> list[dict[str, Any]]:
    """Table rows (dicts of strings and numbers): per label column, per eps, per learner the
    synthetic corpus; then the runs' own eps = 0 populations, the real split and the constant."""
    runs = [r for r in rows if r.get("eps") != "real"]
    real = [r for r in rows if r.get("eps") == "real"]
    order = sorted({r["eps"] for r in runs}, key=float)
    table: list[dict[str, Any]] = []
    for col in columns:
        prefix = f"{col}: " if len(columns) > 1 else ""
        for eps in order:
            rs = [r for r in runs if r["eps"] == eps]
            for tier in TIERS:
                b = [_get(r, "synthetic", tier, col, "balanced_accuracy") for r in rs]
                table.append(
                    _line(
                        f"{prefix}eps = {eps} (synthetic)",
                        tier,
                        col,
                        rs,
                        "synthetic",
                        (curves.get(tier) or {}).get(col),
                        gap=True,
                        bacc=b,
                    )
                )
        arms = {r["seed"]: r for r in runs if r["eps"] == "0" and "seed" in r}
        for eps in order if arms else []:
            rs = [r for r in runs if r["eps"] == eps and r["eps"] != "0"]
            for tier in TIERS if rs else ():
                gaps = [arm_gap(r, arms.get(r.get("seed")), tier, col, constant) for r in rs]
                table.append(
                    {
                        "corpus": f"{prefix}eps = {eps}, against the eps = 0 arm of its seed",
                        "learner": LEARNER[tier],
                        "seeds": str(len(_vals(gaps))),
                        "n": "-",
                        "balanced acc": "-",
                        "macro-F1": "-",
                        "accuracy": "-",
                        "gap closed": cell(gaps, pct=True),
                        "worth n real": "-",
                    }
                )
        eps0 = [r for r in runs if r.get("learners", {}).get("eps0") and r["eps"] != "0"]
        if eps0:
            for tier in TIERS:
                b = [_get(r, "eps0", tier, col, "balanced_accuracy") for r in eps0]
                table.append(
                    _line(
                        f"{prefix}eps = 0 (the runs' own random-API populations)",
                        tier,
                        col,
                        eps0,
                        "eps0",
                        (curves.get(tier) or {}).get(col),
                        gap=False,
                        bacc=b,
                    )
                )
        if real:
            for tier in TIERS:
                b = [_get(r, "real", tier, col, "balanced_accuracy") for r in real[:1]]
                table.append(
                    _line(
                        f"{prefix}real training split", tier, col, real[:1], "real", None, False, b
                    )
                )
        if col in constant:
            table.append(
                {
                    "corpus": f"{prefix}constant answer",
                    "learner": "-",
                    "seeds": "-",
                    "n": "-",
                    "balanced acc": f"{constant[col]:.3f}",
                    "macro-F1": "-",
                    "accuracy": "-",
                    "gap closed": "-",
                    "worth n real": "-",
                }
            )
    return table


def arm_gap(
    run: Mapping[str, Any],
    arm: Mapping[str, Any] | None,
    tier: str,
    col: str,
    constant: Mapping[str, float],
) -> float | None:
    """(syn - base) / (real - base) with base = max(the eps = 0 ARM's synthetic corpus of the same
    seed, the constant answer): the honest baseline where the run's own iteration-0 population was
    shaped by a DP release (keywords, lengths) and so is not an eps = 0 corpus."""
    if arm is None:
        return None
    syn = _get(run, "synthetic", tier, col, "balanced_accuracy")
    zero = _get(arm, "synthetic", tier, col, "balanced_accuracy")
    real = _get(run, "real", tier, col, "balanced_accuracy")
    if zero is None:
        return None
    return gap_closed(syn, zero, real, float(constant.get(col, 0.0)))


def _line(
    corpus: str,
    tier: str,
    col: str,
    rs: Sequence[Mapping[str, Any]],
    kind: str,
    curve: Mapping[str, Any] | None,
    gap: bool,
    bacc: Sequence[Any],
) -> dict[str, Any]:
    n = [((r.get("learners") or {}).get(kind) or {}).get("n") for r in rs]
    return {
        "corpus": corpus,
        "learner": LEARNER[tier],
        "seeds": str(len(_vals(bacc))),
        "n": cell(n, 0),
        "balanced acc": cell(bacc),
        "macro-F1": cell([_get(r, kind, tier, col, "macro_f1") for r in rs]),
        "accuracy": cell([_get(r, kind, tier, col, "accuracy") for r in rs]),
        "gap closed": cell([_get(r, kind, tier, col, "gap_closed") for r in rs], pct=True)
        if gap
        else "-",
        "worth n real": "-"
        if kind == "real"
        else worth_cell(bacc, [_get(r, kind, tier, col, "worth_real") for r in rs], curve),
    }


def headline(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], curves: Mapping[str, Any]
) -> list[str]:
    """One line per (label column, eps): both learners' balanced accuracy, gap closed and worth,
    next to eps = 0 and real data."""
    runs = [r for r in rows if r.get("eps") != "real"]
    real = [r for r in rows if r.get("eps") == "real"][:1]
    out = []
    for col in columns:
        for eps in sorted({r["eps"] for r in runs}, key=float):
            rs = [r for r in runs if r["eps"] == eps]
            parts = []
            for tier in TIERS:
                b = [_get(r, "synthetic", tier, col, "balanced_accuracy") for r in rs]
                e0 = [_get(r, "eps0", tier, col, "balanced_accuracy") for r in rs]
                re = [_get(r, "real", tier, col, "balanced_accuracy") for r in real]
                g = cell([_get(r, "synthetic", tier, col, "gap_closed") for r in rs], pct=True)
                w = worth_cell(b, [], (curves.get(tier) or {}).get(col))
                parts.append(
                    f"{LEARNER[tier]} {cell(b)} (eps=0 {cell(e0)}, real {cell(re)}; "
                    f"gap closed {g}; worth {w} real)"
                )
            out.append(
                f"{col}, eps = {eps}, {len(rs)} seed(s), balanced accuracy: " + " | ".join(parts)
            )
    return out


def markdown(table: Sequence[Mapping[str, Any]]) -> str:
    if not table:
        return ""
    head = list(table[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(t.get(h, "-")) for h in head) + " |" for t in table]
    return "\n".join(lines)
