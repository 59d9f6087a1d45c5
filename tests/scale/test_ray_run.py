"""A whole run on a real 2-node Ray cluster with the real embedded model (deterministic mode):
the corpus and the ledger are those of `engine: local`, byte for byte, also when a generator
replica is killed mid-run; and a run started on Ray resumes to the same result."""

from __future__ import annotations

import functools
import json
import os
import signal
import threading

import pandas as pd
import pytest
from fakes.pe import HashEmbedder
from fakes.ray_backends import PureLLM, pure, spied_embedded
from fakes.ray_cluster import local_ray_cluster

from augpe.config import parse_config
from augpe.llm.cache import wrap_with_cache
from augpe.runner import compose as pipeline

pytestmark = pytest.mark.ray
ray_llm = pytest.importorskip("augpe.scale.ray_llm")

REVIEWS = [
    ("great", "The smoked paprika from this shop changed my weeknight stews forever"),
    ("great", "Ordered twice for the office and the oat bars vanished in an hour"),
    ("great", "The almond butter is silky and not too sweet, kids love it"),
    ("great", "Best loose leaf oolong I have found in years, truly fragrant"),
    ("other", "Package arrived crushed and half the crackers were stale"),
    ("other", "The coffee tasted burnt and bitter no matter how I brewed it"),
    ("other", "Too salty for me and the jar leaked in the box during shipping"),
    ("other", "Flavour is flat and the texture reminded me of cardboard"),
]


@pytest.fixture(scope="module")
def cluster():
    with local_ray_cluster(nodes=2) as c:
        yield c


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    rows = [{"review": f"{t} canary{i:03d}zq", "score": c} for i, (c, t) in enumerate(REVIEWS)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _cfg(csv, out, engine="local", cache=False, **execution):
    return parse_config(
        {
            "data": {"path": str(csv), "text_column": "review", "label_columns": ["score"]},
            "privacy": {"epsilon": 4.0, "noise_seed": 7, "population_bound": len(REVIEWS)},
            "generation": {
                "backend": "embedded",
                "deterministic": True,
                "threads": 1,
                "cache": cache,
                "prompts": "generic",
                "label_descriptions": {
                    "great": "a positive food review",
                    "other": "a negative one",
                },
                "length": {"random_words": 10, "min_words": 6, "std_words": 2, "max_tokens": 20},
            },
            "pe": {"iterations": 2, "samples": 4, "variations": 2, "k": 2},
            "execution": {"engine": engine, "replicas": 2, "num_cpus": 1, "batch_size": 2}
            | execution,
            "output": {"dir": str(out)},
            "seed": 5,
        }
    )


def _artefacts(run_dir):
    ledger = json.loads((run_dir / "ledger.json").read_text())
    ledger.pop("run_nonce", None)  # random per run by design (it names the run)
    return (run_dir / "synthetic.jsonl").read_bytes(), ledger


@pytest.fixture(scope="module")
def local_run(data_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "run"
    result = pipeline.run(_cfg(data_csv, out), show_progress=False, embedder=HashEmbedder())
    assert result.samples
    return _artefacts(out), result.summary["generation"]["requests"]


def test_engine_ray_gives_the_byte_identical_corpus_and_ledger_of_engine_local(
    cluster, data_csv, local_run, tmp_path
):
    out = tmp_path / "run"
    result = pipeline.run(_cfg(data_csv, out, "ray"), show_progress=False, embedder=HashEmbedder())
    assert _artefacts(out) == local_run[0]
    replicas = result.timings["cost"]["replicas"]
    assert len(replicas) == 2 and all(r["requests"] > 0 for r in replicas)
    assert sum(r["requests"] for r in replicas) == local_run[1]


def test_a_replica_killed_mid_run_changes_nothing_and_no_private_text_reaches_any_replica(
    cluster, data_csv, local_run, tmp_path
):
    cfg = _cfg(data_csv, tmp_path / "run", "ray", cache=True, max_restarts=1)
    spy_dir = tmp_path / "spy"
    spy_dir.mkdir()
    factory = functools.partial(
        spied_embedded,
        str(spy_dir),
        ray_llm.replica_config(cfg.generation, cfg.execution).model_dump(),
    )
    inner = ray_llm.RayLLM(factory, cfg.execution, show_progress=False)
    llm = wrap_with_cache(inner, tmp_path / "cache.sqlite")
    victim = inner.replica_pids()[0]
    killed = threading.Event()

    def killer():  # kill replica 0 once a few answers have come back
        while not killed.is_set():
            if sum(s.requests for s in inner.stats) >= 3:
                os.kill(victim, signal.SIGKILL)
                killed.set()
            killed.wait(0.05)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        result = pipeline.run(cfg, show_progress=False, llm=llm, embedder=HashEmbedder())
        cached = len(llm.store)
    finally:
        killed.set()
        t.join()
        llm.close()
    assert _artefacts(tmp_path / "run") == local_run[0]  # the same corpus and ledger
    n = local_run[1]
    assert inner.usage.requests == n  # every request answered and booked exactly once
    assert llm.misses == n and cached == n  # each cached once
    report = result.timings["cost"]
    assert report["replicas"][0]["lost_batches"] >= 1 and report["reruns_after_replica_death"] >= 1
    assert report["replicas"][0]["processes"] == 2  # the killed process and its restart
    # The privacy spy, inside every replica process: no private text in any prompt.
    bodies = [p.read_text() for p in spy_dir.glob("bodies-*.jsonl")]
    assert len(bodies) >= 3  # both replicas, and the restarted one
    blob = "\n".join(bodies)
    assert "food review" in blob  # the spy sees the prompts
    assert "canary" not in blob
    for _, text in REVIEWS:
        assert text[:30] not in blob


def test_a_run_interrupted_on_ray_resumes_to_the_same_corpus(cluster, data_csv, tmp_path):
    # The driver owns the state, so resume needs nothing from the replicas: a seeded stand-in
    # backend (answers are a function of the request) shows it without the model's minute.
    local = tmp_path / "local"
    pipeline.run(_cfg(data_csv, local), show_progress=False, llm=PureLLM(), embedder=HashEmbedder())
    cfg = _cfg(data_csv, tmp_path / "run", "ray", cache=True)
    execution = cfg.execution

    class Interrupted(ray_llm.RayLLM):
        calls = 0

        def generate(self, *a, **k):
            Interrupted.calls += 1
            if Interrupted.calls == 3:
                raise KeyboardInterrupt  # the driver is stopped mid-run
            return super().generate(*a, **k)

    llm = Interrupted(pure, execution, show_progress=False)
    try:
        with pytest.raises(KeyboardInterrupt):
            pipeline.run(cfg, show_progress=False, llm=llm, embedder=HashEmbedder())
    finally:
        llm.close()
    assert (tmp_path / "run" / "state").is_dir()
    llm = ray_llm.RayLLM(pure, execution, show_progress=False)
    try:
        pipeline.run(cfg, resume=True, show_progress=False, llm=llm, embedder=HashEmbedder())
    finally:
        llm.close()
    assert _artefacts(tmp_path / "run") == _artefacts(local)
