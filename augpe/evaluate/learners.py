"""The downstream learners side by side: what each shares with the pipeline, its real-data
learning curve, and what the corpus is worth under it.

Two learners are read together. The embedding probe (fast tier) works in the sentence-embedding
space in which the private records vote and the selection keeps texts, and, when the run has
`privacy.centroids`, in which the DP class centroids label the corpus: a corpus fitted to that
space can look better there than it is. The bag-of-words learner (`augpe.evaluate.independent`)
shares no feature space with the pipeline. eval.json keeps, per learner and label column, the
corpus's balanced accuracy next to the eps = 0 baseline, the real-data bound, a constant answer,
the real records it is worth, and the share of the gap to real data it closes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import yaml

from augpe.embed import Embedder
from augpe.evaluate._hf import MINILM
from augpe.evaluate.cache import ResultCache, content_key, texts_and_labels
from augpe.evaluate.corpus import RunInfo, TextCorpus
from augpe.evaluate.downstream import linear_probe
from augpe.evaluate.independent import BOW, BOW_SETTINGS, analyse, bow_classifier
from augpe.evaluate.options import EvalOptions
from augpe.evaluate.scores import constant_balanced_accuracy
from augpe.evaluate.worth import curve_sizes, format_worth, gap_closed, learning_curve, worth_real

__all__ = [
    "CURVE_TIERS",
    "compare_learners",
    "comparison_lines",
    "learner_info",
    "learner_line",
    "real_curves",
    "uses_centroid_labels",
]

log = logging.getLogger("augpe")
CURVE_TIERS = ("fast", BOW)  # the papers' tier is too slow to retrain dozens of times
VOTE_SPACE = "the vote / selection space (the private records vote on these embeddings)"
CENTROID_LABELS = "the labelling (DP class centroids in this space label the corpus)"


def uses_centroid_labels(run_dir: Any) -> bool:
    """Whether the run's corpus is labelled by DP class centroids (its config's privacy.centroids,
    resolved to true; a folder that states `auto` made no centroid release)."""
    from augpe.runner.layout import RunFolder

    try:
        cfg = RunFolder.open(run_dir).config()
    except (OSError, yaml.YAMLError):
        return False
    privacy = cfg.get("privacy") if isinstance(cfg, dict) else None
    return isinstance(privacy, dict) and privacy.get("centroids") is True


def _short_model(name: str) -> str:
    tail = name.rstrip("/").split("/")[-1]
    return "MiniLM" if "minilm" in tail.lower() else tail


def learner_info(opts: EvalOptions, embedding: str, run: RunInfo | None) -> dict[str, Any]:
    """{tier: name, label, features, learner, shares (the pipeline's feature spaces it uses)}."""
    out: dict[str, Any] = {}
    for tier in tiers_of(opts):
        if tier == "fast":
            same = run is not None and opts.embedding_model in (None, run.embedding_model)
            centroids = same and run is not None and uses_centroid_labels(run.run_dir)
            if run is None:
                shares = [VOTE_SPACE + ", if the corpus was made with this embedding model"]
                tag = ""
            else:
                shares = ([VOTE_SPACE] if same else []) + ([CENTROID_LABELS] if centroids else [])
                tag = "; shares the vote space" if same else "; not the run's vote space"
            out[tier] = {
                "name": "embedding probe",
                "label": f"embedding probe ({_short_model(embedding)}{tag})",
                "features": f"frozen sentence embeddings ({embedding})",
                "learner": "logistic regression on unit vectors, C by cross-validation on the "
                "training corpus"
                if opts.C is None
                else f"logistic regression on unit vectors, C = {opts.C}",
                "shares": shares,
                "centroid_labels": centroids,
            }
        elif tier == BOW:
            out[tier] = {
                "name": "bag-of-words",
                "label": "bag-of-words (independent)",
                "features": BOW_SETTINGS["features"],
                "learner": "logistic regression, balanced class weights, C = 1 (fixed)",
                "shares": [],
                "settings": BOW_SETTINGS,
            }
        else:
            model = opts.finetune.model
            # the shipped MiniLM starts from the very weights the default pipeline embeds with
            starts_in_vote_space = model == MINILM and (
                run is None or run.embedding_model == "default"
            )
            out[tier] = {
                "name": "fine-tuned encoder",
                "label": f"fine-tuned encoder ({model})",
                "features": f"{model}, fine-tuned end to end",
                "learner": "best epoch on a validation split, mean over seeds",
                "shares": [VOTE_SPACE + " (its starting weights)"] if starts_in_vote_space else [],
            }
    return out


def tiers_of(opts: EvalOptions) -> tuple[str, ...]:
    """The downstream tiers an evaluation measures: its `tiers`, and "bow" when `independent`."""
    return tuple(opts.tiers) + ((BOW,) if opts.independent and BOW not in opts.tiers else ())


def real_curves(
    rt: TextCorpus,
    test: TextCorpus,
    test_emb: np.ndarray,
    columns: Sequence[str],
    real_emb: Embedder,
    opts: EvalOptions,
    results: ResultCache | None = None,
    until: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, dict[str, Any]]:
    """{tier: {column: learning curve}} of the fast and bag-of-words learners on subsets of the
    real training text; read from the private results cache when its inputs are the same.
    `until[tier][column]`: the best score of the corpora compared; a curve stops once past it."""
    tiers = [t for t in tiers_of(opts) if t in CURVE_TIERS]
    if not tiers or not columns or len(rt) == 0:
        return {}
    key = None
    if results is not None:
        from augpe import __version__

        key = content_key(
            "real-curve/1",
            __version__,
            real_emb.name,
            texts_and_labels(rt.texts, rt.labels),
            texts_and_labels(test.texts, test.labels),
            list(columns),
            tiers,
            opts.C,
            opts.curve_draws,
            {t: dict(c) for t, c in (until or {}).items()},
        )
        hit = results.get(key)
        if hit is not None:
            log.info("eval: real-data learning curves from the private eval cache")
            return hit
    sizes = curve_sizes(len(rt))
    log.info("eval: real-data learning curves, %s texts x %d draws", sizes, opts.curve_draws)
    emb = real_emb.encode(rt.texts, desc="embed real (upper bound)") if "fast" in tiers else None
    docs, test_docs = (analyse(rt.texts), analyse(test.texts)) if BOW in tiers else ([], [])
    out: dict[str, dict[str, Any]] = {}
    for tier in tiers:
        out[tier] = {}
        for col in columns:
            y, ty = rt.labels[col], test.labels[col]

            def score(
                idx: np.ndarray, tier: str = tier, y: list[str] = y, ty: list[str] = ty
            ) -> float:
                sub = [y[i] for i in idx]
                if tier == "fast":
                    assert emb is not None
                    r = linear_probe(emb[idx], sub, test_emb, ty, C=opts.C)
                else:
                    r = bow_classifier([docs[i] for i in idx], sub, test_docs, ty, analysed=True)
                return float(r["balanced_accuracy"])

            stop = (until or {}).get(tier, {}).get(col)
            out[tier][col] = learning_curve(score, y, sizes, draws=opts.curve_draws, until=stop)
    if results is not None and key is not None:
        results.put(key, out)
    return out


def _balanced(entry: Mapping[str, Any], tier: str, col: str) -> float | None:
    r = (entry.get("downstream") or {}).get(tier, {}).get(col)
    return None if not r else r.get("balanced_accuracy")


def best_scores(
    results: list[dict[str, Any]], tiers: Sequence[str], columns: Sequence[str]
) -> dict[str, dict[str, float]]:
    """{tier: {column: the best balanced accuracy of the corpora but the real one}}: where the
    real-data curves can stop (`real_curves(until=...)`)."""
    out: dict[str, dict[str, float]] = {}
    for tier in tiers:
        for col in columns:
            got = [
                b
                for r in results
                if r["kind"] != "real" and (b := _balanced(r, tier, col)) is not None
            ]
            if got:
                out.setdefault(tier, {})[col] = max(got)
    return out


def compare_learners(
    results: list[dict[str, Any]],
    curves: Mapping[str, Mapping[str, Any]],
    tiers: Sequence[str],
    test: TextCorpus,
    columns: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """{tier: {column: synthetic, eps0, real, constant, base, worth_real, gap_closed}} on balanced
    accuracy; every corpus but the real one also gets its worth_real and gap_closed in place."""
    by_kind = {r["kind"]: r for r in reversed(results)}  # the first of each kind
    out: dict[str, dict[str, Any]] = {}
    for tier in tiers:
        out[tier] = {}
        for col in columns:
            constant = round(constant_balanced_accuracy(test.labels[col]), 5)
            eps0 = _balanced(by_kind.get("baseline", {}), tier, col)
            real = _balanced(by_kind.get("real", {}), tier, col)
            curve = (curves.get(tier) or {}).get(col)
            for r in results:
                x = (r.get("downstream") or {}).get(tier, {}).get(col)
                if r["kind"] == "real" or not x:
                    continue
                x["worth_real"] = worth_real(curve, x.get("balanced_accuracy")) if curve else None
                x["gap_closed"] = gap_closed(x.get("balanced_accuracy"), eps0, real, constant)
            syn = (by_kind.get("synthetic", {}).get("downstream") or {}).get(tier, {}).get(col)
            out[tier][col] = {
                "synthetic": None if not syn else syn.get("balanced_accuracy"),
                "eps0": eps0,
                "real": real,
                "constant": constant,
                "base": max(constant, eps0) if eps0 is not None else constant,
                "worth_real": None if not syn else syn.get("worth_real"),
                "gap_closed": None if not syn else syn.get("gap_closed"),
                "degenerate": None if not syn else syn.get("degenerate"),
            }
    return out


def _f(v: Any) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def learner_line(label: str, s: Mapping[str, Any], note: str = "", width: int = 0) -> str:
    """'embedding probe (...): synthetic 0.712 | eps=0 0.660 | real 0.781 | constant 0.500 |
    worth ~60 real' on balanced accuracy; `note` goes next to the synthetic number."""
    parts = [f"synthetic {_f(s.get('synthetic'))}" + (f" ({note})" if note else "")]
    if s.get("eps0") is not None:
        parts.append(f"eps=0 {_f(s['eps0'])}")
    if s.get("real") is not None:
        parts.append(f"real {_f(s['real'])}")
    parts.append(f"constant {_f(s.get('constant'))}")
    if s.get("worth_real"):
        parts.append(f"worth {format_worth(s['worth_real'])} real")
    return f"{label + ':':<{width + 1}} " + " | ".join(parts)


def centroid_note(info: Mapping[str, Any]) -> str:
    return "labels from DP centroids in this space" if info.get("centroid_labels") else ""


def comparison_lines(result: Mapping[str, Any]) -> list[str]:
    """Per label column: a header, then one line per learner (balanced accuracy on real test)."""
    comp, info = result.get("comparison") or {}, result.get("learners") or {}
    lines: list[str] = []
    for col in result.get("label_columns", []):
        tiers = [t for t in comp if col in comp[t]]
        if not tiers:
            continue
        n_test = (result.get("real_test") or {}).get("n", "?")
        lines.append(f"balanced accuracy on {n_test} real test texts ({col}), by learner:")
        width = max(len(info.get(t, {}).get("label", t)) for t in tiers)
        for t in tiers:
            i = info.get(t, {})
            lines.append(
                "  " + learner_line(i.get("label", t), comp[t][col], centroid_note(i), width)
            )
    return lines
