"""`evaluate`: every corpus of the comparison measured against the real test split, as eval.json.

The comparison: the run's synthetic corpus, its eps = 0 baseline (the random API's samples from
state/), any `compare` corpora, and the real training text as the upper bound. The real text is
embedded (and the real-data bound measured) through the private cache when one is given.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from augpe.embed import Embedder
from augpe.errors import DataError
from augpe.evaluate.cache import (
    EmbeddingCache,
    ResultCache,
    StoredEmbedder,
    check_cache_dir,
    content_key,
    run_private_vectors,
    texts_and_labels,
)
from augpe.evaluate.corpus import (
    TextCorpus,
    dp_shaped_random_api,
    is_run_dir,
    load_corpus,
    load_run_corpus,
    population_corpora,
    random_api_corpus,
    run_info,
)
from augpe.evaluate.downstream import finetune_classifier, linear_probe
from augpe.evaluate.fidelity import fidelity_metrics, word_counts
from augpe.evaluate.independent import BOW, bow_classifier
from augpe.evaluate.learners import (
    best_scores,
    compare_learners,
    learner_info,
    real_curves,
    tiers_of,
)
from augpe.evaluate.nextword import next_word_prediction
from augpe.evaluate.options import CachedEmbedder, EvalOptions, make_eval_embedder
from augpe.evaluate.report import write_report

__all__ = ["EVAL_JSON", "evaluate", "measure"]

log = logging.getLogger("augpe")
EVAL_JSON = "eval.json"
# Options that change neither a number nor which numbers are measured: not part of the key of
# the real-data results cache (so a cache filled on one device serves another).
_NOT_IN_RESULT_KEY = ("plots", "per_iteration", "embedding_device", "embedding_batch_size")


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        return "inf" if math.isinf(obj) else obj
    if isinstance(obj, (np.floating, np.integer)):
        return _json_safe(obj.item())
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _check_labels(c: TextCorpus, columns: Sequence[str], what: str) -> None:
    missing = [col for col in columns if col not in c.labels]
    if missing:
        raise DataError(
            f"{c.source} ({what}): label column(s) {missing} not found; it has "
            f"{c.label_columns or 'no label columns'}"
        )


def _length_histogram(corpora: Mapping[str, Sequence[str]], bins: int = 30) -> dict[str, Any]:
    counts = {k: word_counts(v) for k, v in corpora.items() if len(v)}
    if not counts:
        return {}
    hi = max(int(np.percentile(np.concatenate(list(counts.values())), 99)), 2)
    edges = np.linspace(0, hi + 1, bins + 1)
    return {
        "bins": [round(float(e), 2) for e in edges],
        "counts": {
            k: np.histogram(np.clip(v, 0, hi), edges)[0].tolist() for k, v in counts.items()
        },
    }


def _collect_notes(results: list[dict[str, Any]]) -> list[str]:
    """Every per-corpus note (unseen labels, single class, unreliable metrics), prefixed by its corpus."""
    out: list[str] = []
    for r in results:
        for tier in r["downstream"].values():
            for col, x in tier.items():
                out += [f"{r['name']} / {col}: {m}" for m in x.get("notes", [])]
                if x.get("degenerate"):
                    out.append(f"{r['name']} / {col}: {x['degenerate']}")
        out += [f"{r['name']}: {m}" for m in (r.get("fidelity") or {}).get("notes", [])]
    return out


def measure(
    c: TextCorpus,
    test: TextCorpus,
    test_emb: np.ndarray,
    columns: Sequence[str],
    emb: Embedder,
    opts: EvalOptions,
    val: TextCorpus | None = None,
    full: bool = True,
) -> dict[str, Any]:
    """Every metric of one training corpus against the real test corpus (embedded as `test_emb`).

    full=False: the fast tier and fidelity only (used per iteration)."""
    e = emb.encode(c.texts, desc=f"embed {c.name}")
    out: dict[str, Any] = {"downstream": {}}
    for tier in tiers_of(opts) if full else ("fast",):
        per_col: dict[str, Any] = {}
        for col in columns:
            if tier == "fast":
                per_col[col] = linear_probe(
                    e, c.labels[col], test_emb, test.labels[col], C=opts.C, weights=c.weights
                )
            elif tier == BOW:
                per_col[col] = bow_classifier(
                    c.texts, c.labels[col], test.texts, test.labels[col], weights=c.weights
                )
            else:
                log.info(
                    "papers' tier: fine-tuning %s on %s (%s)", opts.finetune.model, c.name, col
                )
                per_col[col] = finetune_classifier(
                    c.texts,
                    c.labels[col],
                    test.texts,
                    test.labels[col],
                    opts.finetune,
                    val.texts if val else None,
                    val.labels[col] if val else None,
                    c.weights,
                )
        if per_col:
            out["downstream"][tier] = per_col
    if opts.fidelity:
        out["fidelity"] = fidelity_metrics(test_emb, e, test.texts, c.texts, k=opts.knn_k)
    if full and opts.nextword is not None:
        log.info("next-word prediction: training %s on %s", opts.nextword.model, c.name)
        out["nextword"] = next_word_prediction(c.texts, test.texts, opts.nextword)
    return out


def _measure_real(
    c: TextCorpus,
    test: TextCorpus,
    test_emb: np.ndarray,
    columns: Sequence[str],
    emb: Embedder,
    opts: EvalOptions,
    val: TextCorpus | None,
    results: ResultCache | None,
) -> dict[str, Any]:
    """`measure` of the real-data upper bound, read from the private results cache when every
    input it depends on is the same (real texts and labels, embedder, options, augpe version)."""
    if results is None:
        return measure(c, test, test_emb, columns, emb, opts, val)
    from augpe import __version__

    key = content_key(
        "real-upper-bound/1",
        __version__,
        emb.name,
        texts_and_labels(c.texts, c.labels),
        texts_and_labels(test.texts, test.labels),
        texts_and_labels(val.texts, val.labels) if val is not None else None,
        list(columns),
        {k: v for k, v in asdict(opts).items() if k not in _NOT_IN_RESULT_KEY},
    )
    hit = results.get(key)
    if hit is not None:
        log.info("eval: %s: results from the private eval cache (same real text)", c.name)
        return hit
    m = _json_safe(measure(c, test, test_emb, columns, emb, opts, val))
    results.put(key, m)
    return dict(m)


def evaluate(  # noqa: C901 - one linear report, each optional step a few lines
    corpus: str | Path,
    real_test: str | Path,
    *,
    real_train: str | Path | None = None,
    real_val: str | Path | None = None,
    text_column: str | None = None,
    label_columns: Sequence[str] | None = None,
    compare: Mapping[str, str | Path] | None = None,
    options: EvalOptions | None = None,
    embedder: Embedder | None = None,
    out_dir: str | Path | None = None,
    show_progress: bool = False,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate a run folder (or any corpus file) against real text; see the module docstring.

    `compare` maps a display name to another run folder or corpus (e.g. {"eps=inf": "runs/inf"}).
    `real_val`: a real validation split for the papers' tier (default: 10% of each training corpus).
    `cache_dir`: a PRIVATE folder where embeddings of the real text and the real-data results are
    kept by content hash (`augpe.evaluate.cache`), so the next evaluation against the same real
    files does not pay for them again; None (the default here) keeps nothing on disk.
    With `options.independent` (the default) every corpus is also scored by the bag-of-words
    learner, which shares no feature space with the pipeline; with `real_train`, both learners'
    real-data learning curves say how many real records each corpus is worth.
    Returns the eval.json dictionary; writes eval.json + report.md to `out_dir` when given.
    """
    opts = options or EvalOptions()
    t0 = time.perf_counter()
    notes: list[str] = []
    run = run_info(corpus) if is_run_dir(corpus) else None
    if cache_dir is not None:  # before any work: it must be a PRIVATE folder
        public = [Path(corpus), *(Path(p) for p in (compare or {}).values())]
        check_cache_dir(Path(cache_dir), *public, *([Path(out_dir)] if out_dir else []))
    if run is not None:
        synthetic = load_run_corpus(run.run_dir, "synthetic")
        text_column = text_column or run.text_column
        columns = list(label_columns) if label_columns is not None else run.label_columns
    else:
        synthetic = load_corpus(
            corpus,
            text_column or "text",
            list(label_columns) if label_columns else None,
            "synthetic",
            role="synthetic corpus",
        )
        text_column = text_column or "text"
        columns = list(label_columns) if label_columns is not None else synthetic.label_columns
    _check_labels(synthetic, columns, "synthetic corpus")
    test = load_corpus(
        real_test, text_column, columns, "real test", role="real test file (--real-test)"
    )
    _check_labels(test, columns, "real test file")
    if not columns:
        notes.append("no label columns: downstream classification skipped")

    entries: list[tuple[str, str, TextCorpus]] = [("synthetic", "synthetic", synthetic)]
    if run is not None:
        eps0 = random_api_corpus(run.run_dir)
        if eps0 is not None:
            entries.append(("eps=0 (random API)", "baseline", eps0))
            if shaped := dp_shaped_random_api(run.run_dir):
                notes.append(
                    f"the eps=0 baseline's RANDOM API used this run's DP {shaped} release: it is "
                    "the population before the first vote, not an eps = 0 corpus, and the gap "
                    "closed against it understates what the private data added"
                )
        else:
            notes.append(
                "eps=0 baseline unavailable: the run folder has no state/population_00.json"
            )
    for name, path in (compare or {}).items():
        c = load_corpus(path, text_column, columns, name, role=f"compare '{name}'")
        if len(c) == 0:
            raise DataError(f"{path} (compare '{name}'): the corpus is empty")
        _check_labels(c, columns, f"compare '{name}'")
        entries.append((name, "compare", c))
    rt: TextCorpus | None = None
    if real_train is not None:
        rt = load_corpus(
            real_train, text_column, columns, "real (upper bound)", role="real training file"
        )
        _check_labels(rt, columns, "real training file")
        rt = rt.subsample(opts.max_real_train)
        if "subsampled_from" in rt.meta:
            notes.append(
                f"real upper bound trained on {len(rt)} of {rt.meta['subsampled_from']} real texts"
            )
        entries.append(("real (upper bound)", "real", rt))
    val = None
    if real_val is not None:
        val = load_corpus(
            real_val, text_column, columns, "real validation", role="real validation file"
        )
        _check_labels(val, columns, "real validation file")

    emb_model = opts.embedding_model or (run.embedding_model if run else "default")
    emb = embedder if embedder is not None else make_eval_embedder(emb_model, opts, show_progress)
    if not isinstance(emb, CachedEmbedder):
        emb = CachedEmbedder(emb)
    real_emb: Embedder = emb  # embeds the real (private) text: through the private cache if any
    results_cache: ResultCache | None = None
    if cache_dir is not None:
        cache = Path(cache_dir)
        store = EmbeddingCache(cache, emb.name)
        if run is not None and real_train is not None:
            n = store.seed(run_private_vectors(run.run_dir, emb.name))
            if n:
                log.info("eval: %d vectors from the run's own private-embedding cache", n)
        real_emb = StoredEmbedder(emb.inner, store)
        results_cache = ResultCache(cache)
        log.info("eval: private eval cache %s (embeddings of real text; do not share)", cache)
    test_emb = real_emb.encode(test.texts, desc="embed real test")

    results = []
    for name, kind, c in entries:
        log.info("evaluating %s (%d texts)", name, len(c))
        if kind == "real":
            m = _measure_real(c, test, test_emb, columns, real_emb, opts, val, results_cache)
        else:
            m = measure(c, test, test_emb, columns, emb, opts, val)
        r = {
            "name": name,
            "kind": kind,
            "source": c.source,
            "epsilon": c.epsilon,
            "n": len(c),
            "label_counts": {col: c.label_counts(col) for col in columns},
            **m,
        }
        results.append(r)

    per_iter: list[dict[str, Any]] = []
    if run is not None and opts.per_iteration:
        stages = [(t, "population", c) for t, c in population_corpora(run.run_dir) if len(c)]
        if stages:  # without saved populations there is nothing to plot over iterations
            stages.append((int(run.iterations or len(stages)), "final", synthetic))
        for t, stage, c in stages:
            m = (
                results[0]
                if stage == "final"
                else measure(c, test, test_emb, columns, emb, opts, full=False)
            )
            f = m.get("fidelity") or {}
            per_iter.append(
                {
                    "iteration": t,
                    "stage": stage,
                    "n": len(c),
                    "accuracy": {col: m["downstream"]["fast"][col]["accuracy"] for col in columns},
                    **{k: f.get(k) for k in ("fid", "mauve", "precision", "recall")},
                }
            )

    curves: dict[str, dict[str, Any]] = {}
    if rt is not None and columns:
        best = best_scores(results, tiers_of(opts), columns)
        curves = real_curves(rt, test, test_emb, columns, real_emb, opts, results_cache, best)
    comparison = compare_learners(results, curves, tiers_of(opts), test, columns)

    hist_src = {e[0]: e[2].texts for e in entries if e[1] != "real"}
    hist_src["real test"] = test.texts
    result: dict[str, Any] = {
        "version": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "corpus": str(run.run_dir if run else corpus),
        "run_dir": str(run.run_dir) if run else None,
        "epsilon": run.epsilon if run else None,
        "text_column": text_column,
        "label_columns": columns,
        "real_test": {
            "source": test.source,
            "n": len(test),
            "dropped_empty": test.meta.get("dropped_empty", 0),
            "label_counts": {col: test.label_counts(col) for col in columns},
        },
        "embedding_model": emb.name,
        "tiers": list(tiers_of(opts)),
        "learners": learner_info(opts, emb.name, run),
        "comparison": comparison,
        "learning_curves": curves,
        "knn_k": opts.knn_k,
        "results": results,
        "per_iteration": per_iter,
        "length_histogram": _length_histogram(hist_src),
        "notes": notes + _collect_notes(results),
        "not_dp": "real-data numbers here (upper bound, fidelity to real text) are not differentially private",
        "seconds": round(time.perf_counter() - t0, 2),
    }
    result = _json_safe(result)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / EVAL_JSON).write_text(
            json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        write_report(result, out, plots=opts.plots)
    return result
