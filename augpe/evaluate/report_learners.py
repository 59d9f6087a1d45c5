"""The report's learner section: each downstream learner, the feature spaces it shares with the
pipeline, the corpus's balanced accuracy next to its baselines, what it is worth in real records,
the gap it closes, and the real-data learning curves (a table, and a plot with matplotlib)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from augpe.evaluate.learners import centroid_note
from augpe.evaluate.worth import format_worth

__all__ = ["learners_section", "plot_learning_curves"]


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def _safe(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in s)


def _curve_table(
    curves: Mapping[str, Mapping[str, Any]], col: str, info: Mapping[str, Any]
) -> list[str]:
    tiers = [t for t in curves if col in curves[t]]
    if not tiers:
        return []
    longest = max((curves[t][col] for t in tiers), key=lambda c: len(c["sizes"]))
    head = ["real records", "draws"] + [info.get(t, {}).get("name", t) for t in tiers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, n in enumerate(longest["sizes"]):
        row = [str(n), str(len(longest["scores"][i]))]
        for t in tiers:  # a curve stops once past the best corpus: "-" after that
            c = curves[t][col]
            row.append(f"{c['mean'][i]:.3f} ± {c['std'][i]:.3f}" if i < len(c["mean"]) else "-")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _corpus_rows(result: Mapping[str, Any], col: str, info: Mapping[str, Any]) -> list[str]:
    head = ["corpus", "learner", "accuracy", "macro-F1", "balanced accuracy", "worth", "gap closed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in result["results"]:
        for tier, per_col in (e.get("downstream") or {}).items():
            r = per_col.get(col)
            if not r:
                continue
            worth = "-" if e.get("kind") == "real" else format_worth(r.get("worth_real"))
            lines.append(
                "| "
                + " | ".join(
                    [
                        e["name"],
                        info.get(tier, {}).get("name", tier),
                        _f(r.get("accuracy")),
                        _f(r.get("macro_f1")),
                        _f(r.get("balanced_accuracy")),
                        "-" if worth == "n/a" else worth,
                        "-" if e.get("kind") == "real" else _pct(r.get("gap_closed")),
                    ]
                )
                + " |"
            )
    return lines


def learners_section(result: Mapping[str, Any], out: Path, plots: bool) -> list[str]:
    """Markdown lines of the learner section ([] when no label column was measured)."""
    comp, info = result.get("comparison") or {}, result.get("learners") or {}
    cols = [c for c in result.get("label_columns", []) if any(c in comp[t] for t in comp)]
    if not cols:
        return []
    md = [
        "## Learners side by side",
        "",
        (
            "Each learner is trained on one corpus and scored on the real test split; nothing is "
            "tuned on the test split. Balanced accuracy is the mean recall over the test classes: "
            "a constant answer scores 1 / (number of classes)."
        ),
        "",
    ]
    for tier, i in info.items():
        shares = "; ".join(i.get("shares") or []) or "none (a feature space no pipeline step used)"
        md.append(
            f"- **{i.get('name', tier)}** (`{tier}`): {i.get('features')}; {i.get('learner')}. "
            f"Shares with the pipeline: {shares}."
        )
    md += [
        "",
        (
            "worth: the number of real training records with which the same learner scores as "
            "well (mean over seeded draws, interpolated in log n; `< 16`: below the smallest "
            "draw, `> N`: above the whole real split). gap closed: (corpus - base) / (real - "
            "base), base = the better of eps = 0 and the constant answer."
        ),
        "",
    ]
    for col in cols:
        md += [
            f"### {col}",
            "",
            (
                "| learner | shares with the pipeline | synthetic | eps=0 | real | constant "
                "| worth (real records) | gap closed |"
            ),
            "|---|---|---|---|---|---|---|---|",
        ]
        for tier in comp:
            s = comp[tier].get(col)
            if s is None:
                continue
            i = info.get(tier, {})
            note = centroid_note(i)
            shares = "; ".join(x.split(" (")[0] for x in i.get("shares") or []) or "none"
            md.append(
                f"| {i.get('name', tier)} | {shares} | {_f(s['synthetic'])}"
                f"{f' ({note})' if note else ''}"
                f" | {_f(s['eps0'])} | {_f(s['real'])} | {_f(s['constant'])} | "
                f"{'-' if not s.get('worth_real') else format_worth(s['worth_real'])} | "
                f"{_pct(s.get('gap_closed'))} |"
            )
        md += ["", *_corpus_rows(result, col, info), ""]
        curves = result.get("learning_curves") or {}
        table = _curve_table(curves, col, info)
        if table:
            md += [
                f"Real-data learning curve ({col}, balanced accuracy, mean ± std):",
                "",
                *table,
                "",
            ]
            name = f"learning_curve_{_safe(col)}.png"
            if plots and plot_learning_curves(curves, comp, info, col, out / name):
                md += [f"![learning curve]({name})", ""]
    return md


def plot_learning_curves(
    curves: Mapping[str, Mapping[str, Any]],
    comp: Mapping[str, Mapping[str, Any]],
    info: Mapping[str, Any],
    col: str,
    path: Path,
) -> bool:
    """Balanced accuracy against n real records (log scale), one curve per learner, with the
    synthetic corpus of each learner as a dashed line of the same colour."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    tiers = [t for t in curves if col in curves[t]]
    if not tiers:
        return False
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for k, tier in enumerate(tiers):
        c, color = curves[tier][col], f"C{k}"
        name = info.get(tier, {}).get("name", tier)
        ax.errorbar(
            c["sizes"],
            c["mean"],
            yerr=c["std"],
            marker="o",
            capsize=3,
            color=color,
            label=f"{name}: real",
        )
        syn = (comp.get(tier) or {}).get(col, {}).get("synthetic")
        if syn is not None and math.isfinite(syn):
            ax.axhline(syn, linestyle="--", color=color, label=f"{name}: synthetic ({syn:.3f})")
    ax.set_xscale("log", base=2)
    sizes = max((curves[t][col]["sizes"] for t in tiers), key=len)
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("real training records")
    ax.set_ylabel("balanced accuracy on real test")
    ax.set_title(f"what the corpus is worth in real records ({col})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
