"""Performance-critical behaviour, pinned fast: private embeddings computed once per run with one
embedding model, per-stage timings written, the streamed vote bounded in memory and equal to the
unstreamed one, and the alternative kNN paths of benchmarks/perf (torch exact, faiss IVF) equal to
the exact faiss vote where they claim to be exact."""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes.pe import FakeLLM, HashEmbedder, private_rows, small_config, write_jsonl

import augpe.embed
from augpe.privacy import vote
from augpe.runner import components
from augpe.runner import compose as pipeline
from benchmarks.perf.knn_backends import (
    all_ids,
    build_ivf,
    faiss_ivf_knn_search,
    torch_knn_search,
)


# ---- private embeddings: once per run, one model -----------------------------------------------
class CountingEmbedder(HashEmbedder):
    """HashEmbedder that counts how often each text was embedded, and how often it was built."""

    built = 0

    def __init__(self, *_: Any, **__: Any) -> None:
        super().__init__(dim=32, name="counting-hash")
        type(self).built += 1
        self.seen: Counter[str] = Counter()

    def encode(self, texts: Sequence[str], desc: str = "") -> np.ndarray:
        self.seen.update(texts)
        return super().encode(texts, desc)


@pytest.fixture
def counted_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A real 3-iteration run through `pipeline.run`, which builds its own components (fakes)."""
    rows = private_rows(60, seed=3)
    data = write_jsonl(tmp_path / "private.jsonl", rows)
    built: dict[str, list[Any]] = {"llm": [], "emb": []}

    def make_llm(*_: Any, **__: Any) -> FakeLLM:
        built["llm"].append(FakeLLM(seed=1))
        return built["llm"][-1]

    def make_emb(*a: Any, **kw: Any) -> CountingEmbedder:
        built["emb"].append(CountingEmbedder(*a, **kw))
        return built["emb"][-1]

    monkeypatch.setattr(components, "make_llm", make_llm)
    monkeypatch.setattr(augpe.embed, "SentenceTransformerEmbedder", make_emb)
    private = tmp_path / "PRIVATE"
    cfg = small_config(
        data,
        tmp_path / "run",
        pe={"iterations": 3, "samples": 12, "variations": 2},
        output={"dir": str(tmp_path / "run"), "private_dir": str(private)},
    )
    result = pipeline.run(cfg, show_progress=False)
    return {
        "cfg": cfg,
        "result": result,
        "built": built,
        "texts": [r["text"] for r in rows],
        "data": data,
        "private": private,
        "tmp": tmp_path,
    }


def test_private_texts_are_embedded_exactly_once_per_run_by_one_model(counted_run):
    built = counted_run["built"]
    assert len(built["llm"]) == 1 and len(built["emb"]) == 1  # each model loaded once
    seen = built["emb"][0].seen
    assert {t: seen[t] for t in counted_run["texts"]} == dict.fromkeys(counted_run["texts"], 1)
    # ... while the synthetic texts of all 3 iterations did go through the same embedder
    assert sum(seen.values()) > len(counted_run["texts"]) + 3 * 12


def test_repeated_run_reads_private_embeddings_from_the_private_cache(counted_run, monkeypatch):
    tmp = counted_run["tmp"]
    cfg = small_config(
        counted_run["data"],
        tmp / "run2",
        pe={"iterations": 3, "samples": 12, "variations": 2},
        output={"dir": str(tmp / "run2"), "private_dir": str(counted_run["private"])},
    )
    emb = CountingEmbedder()
    pipeline.run(cfg, show_progress=False, llm=FakeLLM(seed=1), embedder=emb)
    assert not any(emb.seen[t] for t in counted_run["texts"])
    assert list((counted_run["private"] / "cache").glob("private-embeddings-*.npy"))


def test_timings_json_has_every_stage_per_iteration_and_generator_tokens(counted_run):
    timings = json.loads((counted_run["result"].run_dir / "timings.json").read_text())
    per_it = timings["per_iteration"]
    assert {"load_models", "embed_private", "generate"} <= set(per_it["0"])
    for t in ("1", "2", "3"):
        assert {"embed", "vote", "select"} <= set(per_it[t])
    assert "generate" in per_it["1"] and "generate" in per_it["2"]  # none after the last vote
    gen = timings["generation"]
    assert gen["completion_tokens"] > 0 and gen["requests"] > 0
    assert "tokens_per_second" in gen and "seconds" in gen
    assert timings["wall_seconds"] >= sum(timings["totals"].values()) - 1e-3
    assert (
        timings["overlap_private"] is False
    )  # auto: embedded generator and embedder share the CPU
    # Timings grow with N and the private texts: the operator's (RunResult.timings), not released.
    summary = counted_run["result"].summary
    assert counted_run["result"].timings["totals"] == timings["totals"]
    assert not {"stages_seconds", "wall_seconds"} & set(summary)
    assert (
        "seconds" not in summary["generation"] and "tokens_per_second" not in summary["generation"]
    )


# ---- the streamed vote --------------------------------------------------------------------------
def _data(seed: int, n: int = 500, m: int = 90, d: int = 16, classes: int = 3):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, d)).astype(np.float32),
        rng.integers(0, classes, n),
        rng.standard_normal((m, d)).astype(np.float32),
        np.arange(m) % classes,
    )


@pytest.mark.parametrize("distance", ["cosine", "l2"])
@pytest.mark.parametrize("k", [1, 3])
def test_streamed_vote_in_small_chunks_equals_one_chunk(distance, k):
    priv, pc, syn, sc = _data(0)
    one = vote.vote_histogram(priv, pc, syn, sc, k, distance, chunk=10**6)
    small = vote.vote_histogram(priv, pc, syn, sc, k, distance, chunk=7)
    np.testing.assert_allclose(small, one, rtol=0, atol=1e-12)
    assert one.sum() == pytest.approx(len(priv) * k / np.sqrt(k))


class RowSpy:
    """Stands in for the private embedding matrix and records every gather made from it."""

    def __init__(self, x: np.ndarray) -> None:
        self.x, self.shape, self.gathers = x, x.shape, []

    def __getitem__(self, idx: Any) -> np.ndarray:
        out = self.x[idx]
        self.gathers.append(out.shape[0])
        return out


def test_vote_gathers_private_rows_one_chunk_at_a_time():
    """The private matrix is never copied whole per class: memory stays O(private + chunk)."""
    priv, pc, syn, sc = _data(1, n=400)
    spy = RowSpy(priv)
    hist = vote.vote_histogram(spy, pc, syn, sc, 2, "cosine", chunk=32)  # type: ignore[arg-type]
    assert max(spy.gathers) <= 32
    assert sum(spy.gathers) == len(priv)
    np.testing.assert_allclose(
        hist, vote.vote_histogram(priv, pc, syn, sc, 2, "cosine"), atol=1e-12
    )


# ---- alternative kNN paths of benchmarks/perf ----------------------------------------------------
def _assert_same_neighbours(q, base, got, want, distance):
    """Same ids, except where two candidates are at the same distance (a float tie)."""

    def score(ids):
        b = base[ids]
        if distance == "cosine":
            qn = q / np.linalg.norm(q, axis=1, keepdims=True)
            bn = b / np.linalg.norm(b, axis=2, keepdims=True)
            return np.einsum("nd,nkd->nk", qn, bn)
        return -((q[:, None, :] - b) ** 2).sum(-1)

    same = got == want
    assert same.mean() > 0.99
    np.testing.assert_allclose(score(got)[~same], score(want)[~same], atol=1e-4)


@pytest.mark.parametrize("distance", ["cosine", "l2"])
@pytest.mark.parametrize("k", [1, 4])
def test_torch_knn_equals_exact_faiss(distance, k):
    pytest.importorskip("torch")
    priv, _, syn, _ = _data(2, n=700, m=300, d=24)
    want = all_ids(vote.knn_search(priv, syn, k, distance, 128), len(priv), k)
    # a tiny tile forces the tiled path: 64 queries x 300 base per matmul
    got = all_ids(
        torch_knn_search(priv, syn, k, distance, 128, device="cpu", tile_bytes=64 * 300 * 4),
        len(priv),
        k,
    )
    _assert_same_neighbours(priv, syn, got, want, distance)


def test_torch_path_drops_into_vote_histogram_and_gives_the_same_votes(monkeypatch):
    pytest.importorskip("torch")
    priv, pc, syn, sc = _data(3, n=600)
    users = np.arange(len(priv)) % 50
    want = vote.vote_histogram(priv, pc, syn, sc, 2, "cosine", user_ids=users, chunk=100)
    monkeypatch.setattr(vote, "knn_search", functools.partial(torch_knn_search, device="cpu"))
    got = vote.vote_histogram(priv, pc, syn, sc, 2, "cosine", user_ids=users, chunk=100)
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_ivf_probing_every_list_is_exact():
    priv, _, syn, _ = _data(4, n=400, m=256, d=16)
    index = build_ivf(syn, "cosine", nlist=8)
    got = all_ids(
        faiss_ivf_knn_search(priv, syn, 3, "cosine", 64, nprobe=8, index=index), len(priv), 3
    )
    want = all_ids(vote.knn_search(priv, syn, 3, "cosine", 64), len(priv), 3)
    _assert_same_neighbours(priv, syn, got, want, "cosine")


def test_ivf_index_is_trained_on_synthetic_rows_only():
    """DP: the approximate index may depend on public (synthetic) data only, never on a record."""
    _, _, syn, _ = _data(5, m=300, d=16)
    a = build_ivf(syn, "l2", nlist=4)
    b = build_ivf(syn, "l2", nlist=4)  # no private argument exists; same synthetic -> same index
    ca, cb = a.quantizer.reconstruct_n(0, 4), b.quantizer.reconstruct_n(0, 4)
    np.testing.assert_array_equal(ca, cb)


# ---- the private embedding overlapped with the initial generation ------------------------------
class GatedEmbedder(HashEmbedder):
    """Logs its calls. The private encode waits (up to `wait` s) for the LLM's first call: it can
    only see that call if it runs alongside the initial generation."""

    def __init__(self, log: list[str], gate: Any, wait: float, fail: bool = False) -> None:
        super().__init__(dim=32, name="gated-hash")
        self.log, self.gate, self.wait, self.fail = log, gate, wait, fail

    def encode(self, texts: Sequence[str], desc: str = "") -> np.ndarray:
        if desc != "embed private":
            self.log.append("synthetic")
            return super().encode(texts, desc)
        self.log.append("private:start")
        self.log.append("private:saw-generation" if self.gate.wait(self.wait) else "private:alone")
        if self.fail:
            raise RuntimeError("embedding model crashed")
        out = super().encode(texts, desc)
        self.log.append("private:end")
        return out


class GateLLM(FakeLLM):
    def __init__(self, log: list[str], gate: Any) -> None:
        super().__init__(seed=1)
        self.log, self.gate = log, gate

    def generate(self, requests: Sequence[Any], desc: str = "") -> list[Any]:
        self.log.append("generate")
        self.gate.set()
        return super().generate(requests, desc)


def _gated_run(tmp_path: Path, overlap: str, wait: float, fail: bool = False) -> dict[str, Any]:
    import threading

    data = write_jsonl(tmp_path / "private.jsonl", private_rows(40, seed=5))
    log: list[str] = []
    gate = threading.Event()
    cfg = small_config(
        data,
        tmp_path / f"run-{overlap}",
        pe={"iterations": 2, "samples": 8, "variations": 2},
        embedding={"overlap": overlap},
    )
    result = pipeline.run(
        cfg,
        show_progress=False,
        llm=GateLLM(log, gate),
        embedder=GatedEmbedder(log, gate, wait, fail),
    )
    timings = json.loads((result.run_dir / "timings.json").read_text())
    return {"log": log, "result": result, "timings": timings}


def test_private_embedding_runs_alongside_the_initial_generation(tmp_path: Path) -> None:
    on = _gated_run(tmp_path, "on", wait=30.0)
    log = on["log"]
    assert log.count("private:start") == 1 and "private:saw-generation" in log
    # the embedding model is never used for synthetic text before the private texts are done
    assert log.index("private:end") < log.index("synthetic")
    assert on["timings"]["overlap_private"] is True
    assert on["timings"]["totals"]["embed_private"] > 0

    off = _gated_run(tmp_path, "off", wait=0.05)
    assert off["log"][:3] == ["private:start", "private:alone", "private:end"]
    assert off["log"].index("private:end") < off["log"].index("generate")
    assert off["timings"]["overlap_private"] is False
    # overlapping changes when the work is done, never what comes out
    assert on["result"].samples == off["result"].samples


def test_a_failed_background_private_embedding_stops_the_run(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="embedding model crashed"):
        _gated_run(tmp_path, "on", wait=30.0, fail=True)


def test_overlap_auto_is_off_only_when_generation_and_embedding_share_the_cpu(
    tmp_path: Path,
) -> None:
    def cfg(**gen: object) -> Any:
        return small_config(
            tmp_path / "x.jsonl", tmp_path / "r", generation={"prompts": "generic", **gen}
        )

    assert components.overlap_private(cfg(backend="embedded")) is False
    assert components.overlap_private(cfg(backend="openai", model="m")) is True
    assert components.overlap_private(cfg(backend="transformers", model="m", device="cpu")) is False
    assert components.overlap_private(cfg(backend="transformers", model="m", device="cuda")) is True
    mixed = cfg(backend="openai", model="m", mixture=[{"backend": "embedded", "weight": 1}])
    assert components.overlap_private(mixed) is False
    on = small_config(tmp_path / "x.jsonl", tmp_path / "r", embedding={"overlap": "on"})
    assert components.overlap_private(on) is True


def test_timer_stages_are_exclusive_on_one_thread() -> None:
    import time

    from augpe.timing import Timer

    t = Timer()
    with t.stage(1, "embed"):
        time.sleep(0.05)
        with t.stage(0, "wait_private"):
            time.sleep(0.2)
    assert 0.2 <= t.seconds[0]["wait_private"] < 0.3
    assert 0.05 <= t.seconds[1]["embed"] < 0.15  # the nested wait is not counted twice


def test_overlap_reads_yaml_on_and_off(tmp_path: Path) -> None:
    from augpe.config import apply_override, parse_config
    from augpe.errors import ConfigError

    for text, want in (("off", "off"), ("on", "on"), ("true", "on"), ("auto", "auto")):
        raw = small_config(tmp_path / "x.jsonl", tmp_path / "r").dump()
        apply_override(raw, f"embedding.overlap={text}")
        assert parse_config(raw).embedding.overlap == want
    raw = small_config(tmp_path / "x.jsonl", tmp_path / "r").dump()
    apply_override(raw, "embedding.overlap=sometimes")
    with pytest.raises(ConfigError, match="embedding.overlap"):
        parse_config(raw)
