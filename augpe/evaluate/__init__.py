"""Is the synthetic text useful, faithful and worth its budget? `evaluate` answers for one run.

    from augpe.evaluate import evaluate
    result = evaluate("runs/amazon-demo", "data/amazon/test.csv", real_train="data/amazon/train.csv")

or `augpe eval RUN_DIR --real-test TEST_FILE`. For every corpus in the comparison (the run's
synthetic corpus; its eps = 0 baseline, i.e. the random API's samples from state/; any corpora
passed in `compare`, e.g. an eps = inf run; the real training text as the upper bound) it
measures downstream accuracy, macro-F1 and balanced accuracy on the real test split per label
column (fast tier: embeddings + logistic regression, in the space the private records vote in;
bow tier, on by default: TF-IDF + logistic regression, a feature space no pipeline step used;
papers' tier: fine-tuned encoder), fidelity on sentence embeddings (FID, MAUVE, k-NN precision /
recall, lengths) and optionally next-word prediction, then writes eval.json and report.md (with
plots) when `out_dir` is given. With real training text, each learner's real-data learning curve
says how many real records the corpus is worth, and what share of the gap from the eps = 0
baseline to real data it closes.

Where the output goes: by default `<RUN_DIR>.eval/`, beside the run folder and not inside it,
because the real-data numbers in it (upper bound, fidelity to real text) are not DP and the run
folder holds only release-safe artefacts.

    options.py    EvalOptions, CachedEmbedder, default_out_dir: what to measure and with what
    run.py        evaluate, measure: the comparison, written to eval.json (+ report.md)
    baselines.py  demo_baselines, format_baselines: the demo's closing lines (both learners)
    independent.py  bow_classifier: the bag-of-words learner
    learners.py   the learners side by side: what each shares with the pipeline, learning curves
    worth.py      worth n real records, gap closed
    scores.py     accuracy, macro-F1, balanced accuracy, the constant floors
    corpus.py, downstream.py, fidelity.py, nextword.py, report.py, report_learners.py, cache.py:
                  the parts
"""

from __future__ import annotations

from augpe.evaluate.baselines import demo_baselines, format_baselines
from augpe.evaluate.cache import default_cache_dir
from augpe.evaluate.corpus import EvalError, TextCorpus
from augpe.evaluate.downstream import FinetuneSettings
from augpe.evaluate.learners import comparison_lines
from augpe.evaluate.nextword import LMSettings
from augpe.evaluate.options import TIERS, CachedEmbedder, EvalOptions, default_out_dir
from augpe.evaluate.report import headline, write_report
from augpe.evaluate.run import EVAL_JSON, evaluate, measure

__all__ = [
    "EVAL_JSON",
    "TIERS",
    "CachedEmbedder",
    "EvalError",
    "EvalOptions",
    "FinetuneSettings",
    "LMSettings",
    "TextCorpus",
    "comparison_lines",
    "default_cache_dir",
    "default_out_dir",
    "demo_baselines",
    "evaluate",
    "format_baselines",
    "headline",
    "measure",
    "write_report",
]
