"""eval.json -> a Markdown report with plots (matplotlib, optional), and the one-line headline.

The report is built from the eval.json dictionary alone, so it can be regenerated from a saved
file (`write_report(json.load(...), folder)`). Without matplotlib the report is written without
plots and says how to get them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from augpe.evaluate.learners import comparison_lines
from augpe.evaluate.report_learners import learners_section

REPORT = "report.md"


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        if math.isinf(v):
            return "inf"
        return f"{v:.{digits}f}"
    return str(v)


def fmt_eps(eps: Any) -> str:
    if eps is None:
        return "-"
    if isinstance(eps, str):
        return eps
    return "inf" if math.isinf(eps) else f"{eps:.4g}"  # a spent 0.99998 reads as 1


def eps_value(eps: Any) -> float | None:
    """eval.json writes inf as the string "inf"; turn it back into a float."""
    if eps is None:
        return None
    try:
        return float(eps)
    except (TypeError, ValueError):
        return None


def accuracy(entry: dict[str, Any], column: str, tier: str = "fast") -> float | None:
    r = (entry.get("downstream") or {}).get(tier, {}).get(column)
    return None if not r else r.get("accuracy")


def headline(result: dict[str, Any], tier: str = "fast") -> str:
    """'downstream accuracy (score, fast tier): synthetic 0.71 | eps=0 ... | real ...' per label column."""
    lines = []
    for col in result.get("label_columns", []):
        parts = []
        for e in result["results"]:
            acc = accuracy(e, col, tier)
            if acc is None:
                continue
            extra = ""
            r = e["downstream"][tier][col]
            if tier == "paper" and r.get("accuracy_std") is not None:
                extra = f" +- {r['accuracy_std']:.3f}"
            if r.get("degenerate"):
                extra += " (single class!)"
            parts.append(f"{e['name']} {acc:.3f}{extra}")
        if parts:
            maj = next(
                (
                    e["downstream"][tier][col].get("majority_test_accuracy")
                    for e in result["results"]
                    if accuracy(e, col, tier) is not None
                ),
                None,
            )
            tail = f" | majority class {maj:.3f}" if maj is not None else ""
            lines.append(
                f"downstream accuracy on real test ({col}, {tier} tier): "
                + " | ".join(parts)
                + tail
            )
    return "\n".join(lines) if lines else "downstream accuracy: not computed (no label columns)"


# ---- plots ----------------------------------------------------------------------------------
def _pyplot() -> Any | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot_per_iteration(per_iter: list[dict[str, Any]], columns: Sequence[str], path: Path) -> bool:
    plt = _pyplot()
    if plt is None or not per_iter:
        return False
    xs = list(range(len(per_iter)))
    ticks = [
        f"final\n(T={p['iteration']})" if p["stage"] == "final" else f"pop {p['iteration']}"
        for p in per_iter
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for col in columns:
        axes[0].plot(xs, [p.get("accuracy", {}).get(col) for p in per_iter], marker="o", label=col)
    axes[0].set_title("downstream accuracy (fast tier)")
    axes[0].set_ylabel("accuracy on real test")
    if columns:
        axes[0].legend()
    axes[1].plot(xs, [p.get("fid") for p in per_iter], marker="o", color="tab:red")
    axes[1].set_title("FID to real test (lower is closer)")
    for key, marker in (("mauve", "s"), ("precision", "^"), ("recall", "v")):
        axes[2].plot(xs, [p.get(key) for p in per_iter], marker=marker, label=key)
    axes[2].set_title("MAUVE, k-NN precision / recall")
    axes[2].set_ylim(-0.02, 1.02)
    axes[2].legend()
    for ax in axes:
        ax.set_xticks(xs)
        ax.set_xticklabels(ticks, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_lengths(hist: dict[str, Any], path: Path) -> bool:
    plt = _pyplot()
    if plt is None or not hist:
        return False
    edges = hist["bins"]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, counts in hist["counts"].items():
        total = sum(counts) or 1
        ax.stairs([c / total for c in counts], edges, label=name, linewidth=1.8)
    ax.set_xlabel("words per text")
    ax.set_ylabel("share of texts")
    ax.set_title("length distribution")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_accuracy_vs_eps(
    series: dict[str, list[tuple[float, float, float]]],
    path: Path,
    real: float | None = None,
    majority: float | None = None,
    title: str = "downstream accuracy vs epsilon",
) -> bool:
    """series: label -> [(eps, mean, std)]; eps = inf is drawn at the right end, eps = 0 at the left."""
    plt = _pyplot()
    if plt is None:
        return False
    finite = sorted({e for pts in series.values() for e, _, _ in pts if math.isfinite(e) and e > 0})
    pos: dict[float, float] = {0.0: 0.0}
    for i, e in enumerate(finite, start=1):
        pos[e] = float(i)
    inf_x = float(len(finite) + 1)
    labels = {0.0: "0"} | {e: f"{e:g}" for e in finite}
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    any_inf = False
    for name, pts in series.items():
        pts = sorted(pts, key=lambda p: p[0])
        x = [inf_x if math.isinf(e) else pos[e] for e, _, _ in pts]
        any_inf |= any(math.isinf(e) for e, _, _ in pts)
        ax.errorbar(
            x,
            [m for _, m, _ in pts],
            yerr=[s for _, _, s in pts],
            marker="o",
            capsize=3,
            label=name,
        )
    if real is not None:
        ax.axhline(real, linestyle="--", color="black", label=f"real data ({real:.3f})")
    if majority is not None:
        ax.axhline(majority, linestyle=":", color="gray", label=f"majority class ({majority:.3f})")
    ticks = sorted(pos.items(), key=lambda kv: kv[1])
    xt = [v for _, v in ticks] + ([inf_x] if any_inf else [])
    ax.set_xticks(xt)
    ax.set_xticklabels([labels[k] for k, _ in ticks] + (["inf"] if any_inf else []))
    ax.set_xlabel("epsilon (0 = random API only, inf = no noise)")
    ax.set_ylabel("accuracy on real test")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _eps_series(
    result: dict[str, Any], col: str
) -> tuple[dict[str, list[tuple[float, float, float]]], float | None]:
    pts: list[tuple[float, float, float]] = []
    real = None
    for e in result["results"]:
        acc = accuracy(e, col)
        if acc is None:
            continue
        if e.get("kind") == "real":
            real = acc
            continue
        eps = eps_value(e.get("epsilon"))
        if eps is not None:
            pts.append((eps, acc, 0.0))
    return ({col: pts} if len({p[0] for p in pts}) >= 2 else {}), real


# ---- Markdown ---------------------------------------------------------------------------------
def _results_table(result: dict[str, Any]) -> list[str]:
    cols = result.get("label_columns", [])
    tiers = result.get("tiers", ["fast"])
    head = ["corpus", "eps", "n"]
    for t in tiers:
        head += [f"{c} acc ({t})" for c in cols]
    head += ["FID", "MAUVE", "precision", "recall", "words (mean)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in result["results"]:
        row = [e["name"], fmt_eps(e.get("epsilon")), str(e.get("n", "-"))]
        for t in tiers:
            for c in cols:
                r = (e.get("downstream") or {}).get(t, {}).get(c)
                if not r:
                    row.append("-")
                    continue
                cell = _fmt(r.get("accuracy"))
                if r.get("accuracy_std") is not None and t == "paper":
                    cell += f" +- {_fmt(r['accuracy_std'])}"
                if r.get("degenerate"):
                    cell += " (1 class)"
                if r.get("unseen_test_labels"):
                    cell += " *"
                row.append(cell)
        f = e.get("fidelity") or {}
        length = (f.get("length") or {}).get("synthetic", {}).get("mean")
        few = any(str(n).startswith("mauve:") for n in f.get("notes", []))
        row += [
            _fmt(f.get("fid"), 4),
            _fmt(f.get("mauve")) + (" †" if few and f.get("mauve") is not None else ""),
            _fmt(f.get("precision")),
            _fmt(f.get("recall")),
            _fmt(length, 1),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def write_report(result: dict[str, Any], out_dir: str | Path, plots: bool = True) -> Path:
    """Write report.md (and PNG plots) into out_dir; returns the report path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cols = result.get("label_columns", [])
    md: list[str] = [f"# Evaluation of `{result['corpus']}`", ""]
    rt = result["real_test"]
    md += [
        f"- real test: `{rt['source']}` ({rt['n']} texts"
        + (f", {rt['dropped_empty']} empty dropped" if rt.get("dropped_empty") else "")
        + ")",
        f"- text column `{result.get('text_column')}`, label columns {', '.join(f'`{c}`' for c in cols) or '(none)'}",
        f"- sentence embeddings: `{result.get('embedding_model')}`; tiers: {', '.join(result.get('tiers', []))}",
        f"- {result.get('seconds', 0):.1f} s",
        "",
        "```",
        headline(result),
        *comparison_lines(result),
        "```",
        "",
        "## Results",
        "",
        *_results_table(result),
        "",
        (
            "eps = 0: the random API's samples only (what the model writes without private data); "
            "real: trained on real training text (the upper bound; not DP). `*`: some test labels never "
            "occur in that training corpus (they count as errors). †: fewer than 100 texts on a side, "
            "too few for MAUVE to discriminate. MAUVE / FID / precision / recall are "
            "measured on sentence embeddings against the real test text (k-NN k = "
            f"{result.get('knn_k', 3)})."
        ),
        "",
    ]
    md += learners_section(result, out, plots and _pyplot() is not None)
    paper_cols = [
        (e, c)
        for e in result["results"]
        for c in cols
        if (e.get("downstream") or {}).get("paper", {}).get(c, {}).get("per_seed")
    ]
    if paper_cols:
        md += [
            "## Papers' tier (fine-tuned)",
            "",
            "| corpus | column | model | seeds: accuracy (best epoch) |",
            "|---|---|---|---|",
        ]
        for e, c in paper_cols:
            r = e["downstream"]["paper"][c]
            seeds = ", ".join(f"{p['accuracy']:.3f} (ep {p['best_epoch']})" for p in r["per_seed"])
            md.append(f"| {e['name']} | {c} | `{r.get('model')}` | {seeds} |")
        md.append("")
    nw = [(e["name"], e["nextword"]) for e in result["results"] if e.get("nextword")]
    if nw:
        md += [
            "## Next-word prediction",
            "",
            "| corpus | accuracy | perplexity | eval tokens | model |",
            "|---|---|---|---|---|",
        ]
        md += [
            f"| {n} | {_fmt(r['accuracy'])} | {_fmt(r['perplexity'], 2)} | {r['eval_tokens']} | `{r['model']}` |"
            for n, r in nw
        ]
        md.append("")
    per_iter = result.get("per_iteration") or []
    made_plots = plots and _pyplot() is not None
    if per_iter:
        md += [
            "## Per iteration",
            "",
            "Population t is what the vote of iteration t+1 saw; final is the released corpus.",
            "",
        ]
        head = ["stage", "n"] + [f"{c} acc" for c in cols] + ["FID", "MAUVE", "precision", "recall"]
        md += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for p in per_iter:
            stage = "final" if p["stage"] == "final" else f"population {p['iteration']}"
            md.append(
                "| "
                + " | ".join(
                    [stage, str(p["n"])]
                    + [_fmt(p.get("accuracy", {}).get(c)) for c in cols]
                    + [
                        _fmt(p.get("fid"), 4),
                        _fmt(p.get("mauve")),
                        _fmt(p.get("precision")),
                        _fmt(p.get("recall")),
                    ]
                )
                + " |"
            )
        md.append("")
        if made_plots and plot_per_iteration(per_iter, cols, out / "per_iteration.png"):
            md += ["![metrics per iteration](per_iteration.png)", ""]
    if made_plots and plot_lengths(result.get("length_histogram") or {}, out / "lengths.png"):
        md += ["## Lengths", "", "![length histograms](lengths.png)", ""]
    for col in cols:
        series, real = _eps_series(result, col)
        if made_plots and series:
            name = f"accuracy_vs_eps_{_safe(col)}.png"
            if plot_accuracy_vs_eps(
                series, out / name, real=real, title=f"accuracy vs epsilon ({col})"
            ):
                md += [f"## Accuracy vs epsilon ({col})", "", f"![accuracy vs eps]({name})", ""]
    if plots and not made_plots:
        md += ["(plots skipped: matplotlib is not installed; pip install 'augpe[bench]')", ""]
    notes = result.get("notes") or []
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    path = out / REPORT
    path.write_text("\n".join(md), encoding="utf-8")
    return path


def _safe(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in s)
