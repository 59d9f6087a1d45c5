"""Privacy spy on every backend: a real run on private data with canaries; no private text in any
request that any backend receives, nor in the request cache.

Pipeline runs use the backends (a mixture of three, then the embedded one alone, which is slow on
a shared CPU), each watched where its input is last seen:
- openai: every raw HTTP body, captured at the (fake) server on 127.0.0.1;
- vllm: every conversation handed to the (stand-in) engine's `LLM.chat`;
- transformers: every `input_ids` tensor handed to `model.generate`, decoded back to text
  (the tiny model's character tokenizer round-trips exactly);
- embedded: every body handed to xllamacpp's `handle_chat_completions`.
"""

from __future__ import annotations

import json
import sqlite3
import sys

import pandas as pd
import pytest
from fakes.fake_vllm import make_fake_vllm
from fakes.openai_server import FakeOpenAIServer
from fakes.pe import HashEmbedder
from fakes.tiny_lm import build_tiny_lm

from augpe.config import parse_config
from augpe.llm import make_llm
from augpe.llm.backends.embedded import EmbeddedLLM
from augpe.llm.backends.openai import OpenAILLM
from augpe.llm.backends.transformers import TransformersLLM
from augpe.llm.backends.vllm import VLLMLLM
from augpe.llm.cache import wrap_with_cache
from augpe.llm.mixture import MixtureLLM
from augpe.runner import compose as pipeline

PRIVATE = [
    ("great", "The smoked paprika from this shop changed my weeknight stews forever"),
    ("great", "My grandmother's recipe finally tastes right with these dried cherries"),
    ("great", "Ordered twice for the office and the oat bars vanished in an hour"),
    ("great", "Best loose leaf oolong I have found outside of Taipei, truly"),
    ("great", "The almond butter is silky and not too sweet, kids love it"),
    ("other", "Package arrived crushed and half the crackers were stale"),
    ("other", "The coffee tasted burnt and bitter no matter how I brewed it"),
    ("other", "Too salty for me and the jar leaked in the box during shipping"),
    ("other", "Expired two months before delivery, asked for a refund"),
    ("other", "Flavour is flat and the texture reminded me of cardboard"),
]


class ServerSpy:
    """Stands in front of xllamacpp's in-process server and keeps every body it is handed."""

    def __init__(self, server) -> None:
        self.server = server
        self.bodies: list[str] = []

    def handle_chat_completions(self, body, *args, **kwargs):
        self.bodies.append(json.dumps(body))
        return self.server.handle_chat_completions(body, *args, **kwargs)

    def handle_completions(self, body, *args, **kwargs):
        self.bodies.append(json.dumps(body))
        return self.server.handle_completions(body, *args, **kwargs)


@pytest.fixture
def private_csv(tmp_path):
    rows = [{"review": f"{t} canary{i:03d}zq", "score": c} for i, (c, t) in enumerate(PRIVATE)]
    path = tmp_path / "private.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path, [r["review"] for r in rows]


@pytest.fixture
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_config(csv, out):
    return parse_config(
        {
            "data": {"path": str(csv), "text_column": "review", "label_columns": ["score"]},
            "privacy": {"epsilon": 4.0, "noise_seed": 1},
            "generation": {
                "prompts": "generic",
                "label_descriptions": {
                    "great": "a positive food review",
                    "other": "a negative food review",
                },
                "length": {"random_words": 12, "min_words": 8, "std_words": 2, "max_tokens": 24},
            },
            "pe": {"iterations": 2, "samples": 4, "variations": 2},
            "output": {"dir": str(out)},
            "seed": 3,
        }
    )


def assert_no_private_text(seen: dict[str, list[str]], private_texts: list[str]) -> None:
    for backend, texts in seen.items():
        assert texts, f"{backend} was never asked anything: the spy proves nothing"
        blob = "\n".join(texts)
        assert "food review" in blob, f"{backend}: the spy does not see the prompt text"
        assert "canary" not in blob, backend
        for t in private_texts:
            assert t[:30] not in blob, backend


def test_no_private_text_reaches_the_http_vllm_or_transformers_backends_or_the_cache(
    private_csv, tmp_path, monkeypatch, one_thread
):
    csv, private_texts = private_csv
    monkeypatch.setitem(sys.modules, "vllm", make_fake_vllm())
    model, tok = build_tiny_lm(seed=0)
    seen_by_transformers: list[str] = []
    real_generate = model.generate

    def generate_spy(*args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        seen_by_transformers.extend(tok.batch_decode(ids, skip_special_tokens=False))
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(model, "generate", generate_spy)
    cfg = run_config(csv, tmp_path / "run")
    cache_path = tmp_path / "cache.sqlite"
    with FakeOpenAIServer() as srv:
        vllm_llm = VLLMLLM("org/vllm-model", show_progress=False)
        mix = MixtureLLM(
            [
                (OpenAILLM("fake-model", base_url=srv.base_url, show_progress=False), 2.0),
                (vllm_llm, 2.0),
                (TransformersLLM(model, tok, name="transformers:tiny", show_progress=False), 1.0),
            ]
        )
        llm = wrap_with_cache(mix, cache_path)
        try:
            result = pipeline.run(cfg, show_progress=False, llm=llm, embedder=HashEmbedder())
        finally:
            llm.close()
        http_bodies = [b.decode("utf-8") for b in srv.raw]
    seen = {
        "openai": http_bodies,
        "vllm": sys.modules["vllm"].LLM.instances[0].seen,
        "transformers": seen_by_transformers,
    }
    assert_no_private_text(seen, private_texts)
    cached = (
        sqlite3.connect(cache_path)
        .execute("SELECT key, backend, text, model FROM completions")
        .fetchall()
    )
    assert cached and "canary" not in json.dumps(cached)
    # The corpus says which model wrote each sample.
    models = {r["model"] for r in result.samples}
    assert models and models <= {m.name for m in mix.members}


@pytest.mark.slow
def test_no_private_text_reaches_the_embedded_model(private_csv, tmp_path):
    csv, private_texts = private_csv
    embedded = EmbeddedLLM(n_parallel=4, n_ctx_per_slot=512, threads=1, show_progress=False)
    spy = ServerSpy(embedded._server)
    embedded._server = spy
    try:
        pipeline.run(
            run_config(csv, tmp_path / "run"),
            show_progress=False,
            llm=embedded,
            embedder=HashEmbedder(),
        )
    finally:
        embedded.close()
    assert_no_private_text({"embedded": spy.bodies}, private_texts)


def test_no_private_text_reaches_the_embedded_base_model_in_completions_mode(private_csv, tmp_path):
    """Gemma 3 270M (a base model) takes each request as plain text with the set's answer prefix;
    every request carries the set's stops."""
    csv, private_texts = private_csv
    cfg = run_config(csv, tmp_path / "run")
    cfg = cfg.model_copy(
        update={
            "generation": cfg.generation.model_copy(
                update={"model": "gemma3-270m", "prompts": "generic_base"}
            )
        }
    )
    gemma = EmbeddedLLM.from_config(cfg.generation, show_progress=False)
    assert gemma.api == "completions"
    spy = ServerSpy(gemma._server)
    gemma._server = spy
    try:
        result = pipeline.run(cfg, show_progress=False, llm=gemma, embedder=HashEmbedder())
    finally:
        gemma.close()
    assert_no_private_text({"embedded gemma": spy.bodies}, private_texts)
    bodies = [json.loads(b) for b in spy.bodies]
    assert all("messages" not in b and b["prompt"].endswith('\n\n"') for b in bodies)
    assert all(b["stop"] == ['"\n', "\n\n"] for b in bodies)
    assert {r["model"] for r in result.samples} == {"embedded:gemma-3-270m-q4_k_m"}


@pytest.mark.slow
@pytest.mark.ray
def test_no_private_text_reaches_any_ray_replica(private_csv, tmp_path):
    """The embedded backend in two Ray replicas on a 2-node cluster, a spy in each replica process.

    (tests/scale/test_ray_run.py repeats this check in the default suite, with a replica killed and
    restarted mid-run.)"""
    from fakes.ray_backends import spied_embedded
    from fakes.ray_cluster import local_ray_cluster

    from augpe.config import ExecutionConfig
    from augpe.scale.ray_llm import RayLLM, replica_config

    csv, private_texts = private_csv
    cfg = run_config(csv, tmp_path / "run")
    execution = ExecutionConfig(engine="ray", replicas=2, num_cpus=1, batch_size=2)
    spy_dir = tmp_path / "spy"
    spy_dir.mkdir()
    gen = replica_config(cfg.generation, execution).model_dump()
    with local_ray_cluster(nodes=2):
        llm = RayLLM(lambda: spied_embedded(str(spy_dir), gen), execution, show_progress=False)
        try:
            pipeline.run(cfg, show_progress=False, llm=llm, embedder=HashEmbedder())
            assert all(s.requests > 0 for s in llm.stats)  # both replicas were asked
        finally:
            llm.close()
    bodies = {p.name: p.read_text() for p in spy_dir.glob("bodies-*.jsonl")}
    assert len(bodies) == 2
    assert_no_private_text({f"ray replica {n}": [b] for n, b in bodies.items()}, private_texts)


def test_no_private_text_reaches_either_model_of_a_lineage_mixture(private_csv, tmp_path):
    """SmolLM2 (chat, `generic`) and Gemma 3 270M (completions, `generic_base`, its own class
    descriptions) in one run: each is sent its own rendering, and under lineage routing each
    variation is written by its parent's model."""
    csv, private_texts = private_csv
    raw = run_config(csv, tmp_path / "run").dump()
    own = {"great": "a 5-star food review", "other": "a 1-star food review"}
    base_member = {"weight": 1, "model": "gemma3-270m", "prompts": "generic_base"}
    raw["generation"]["mixture"] = [{"weight": 1}, {**base_member, "label_descriptions": own}]
    raw["generation"]["mixture_routing"] = "lineage"
    cfg = parse_config(raw)
    mix = make_llm(cfg.generation, show_progress=False)
    spies = [ServerSpy(m._server) for m in mix.members]
    for m, spy in zip(mix.members, spies, strict=True):
        m._server = spy
    try:
        result = pipeline.run(cfg, show_progress=False, llm=mix, embedder=HashEmbedder())
    finally:
        mix.close()
    smol, gemma = ([json.loads(b) for b in s.bodies] for s in spies)
    assert_no_private_text({"smollm2": spies[0].bodies, "gemma": spies[1].bodies}, private_texts)
    assert all("messages" in b and "star" not in json.dumps(b) for b in smol)
    assert all(b["prompt"].endswith('\n\n"') and "-star food review" in b["prompt"] for b in gemma)
    written = {}
    for f in sorted((tmp_path / "run" / "state").glob("population_*.json")):
        written |= {s["id"]: s["model"] for s in json.loads(f.read_text())["samples"]}
    varied = [r for r in result.samples if r["parent_id"] in written]
    assert varied and all(r["model"] == written[r["parent_id"]] for r in varied)
