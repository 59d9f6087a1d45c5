"""RayLLM on a real 2-node Ray cluster: every request answered once, by any replica, the same
answer; a replica killed mid-call loses nothing and books nothing twice; max_cost and the cache
stay on the driver. The Ray Data LLM (vLLM) mapping is tested without Ray or vLLM."""

from __future__ import annotations

import functools
import os
import signal
import threading

import pytest
from fakes.ray_backends import PureLLM, pure
from fakes.ray_cluster import local_ray_cluster

from augpe.config import ExecutionConfig, generation_config
from augpe.errors import BackendError
from augpe.llm.base import GenerationRequest
from augpe.llm.cache import CachedLLM
from augpe.llm.cost import BudgetExceeded

ray_llm = pytest.importorskip("augpe.scale.ray_llm")


@pytest.fixture(scope="module")
def cluster():
    with local_ray_cluster(nodes=2) as c:
        yield c


def _requests(n, tag="r"):
    return [
        GenerationRequest(
            messages=[{"role": "user", "content": f"Rephrase sample {tag}{i} please."}],
            max_tokens=16,
            temperature=1.0,
            top_p=0.95,
            seed=1000 + i,
        )
        for i in range(n)
    ]


def _exec(**kw):
    base = {"engine": "ray", "replicas": 2, "num_cpus": 0.5, "batch_size": 3}
    return ExecutionConfig(**{**base, **kw})


@pytest.mark.ray
def test_replicas_answer_every_request_once_with_the_local_answer(cluster):
    reqs = _requests(23)
    local = PureLLM().generate(reqs)
    llm = ray_llm.RayLLM(pure, _exec(), show_progress=False)
    try:
        seen: list[int] = []
        got = llm.generate(reqs, "it1", on_result=lambda i, g: seen.append(i))
        assert [g.text for g in got] == [g.text for g in local]
        assert sorted(seen) == list(range(23))  # each answer reported once, as it arrived
        assert llm.usage.requests == 23 and llm.usage.completion_tokens == 23 * 12
        report = llm.cost_report()
        assert all(r["requests"] > 0 for r in report["replicas"])  # both replicas worked
        assert sum(r["requests"] for r in report["replicas"]) == 23
        want = sum(g.prompt_tokens * 1.0 + g.completion_tokens * 2.0 for g in local) / 1000
        assert report["cost"] == pytest.approx(want)
        assert report["cost_by_batch"] == {"it1": pytest.approx(want)}
        assert llm.cache_id == "pure-fake" and llm.name == "pure-fake"
    finally:
        llm.close()


@pytest.mark.ray
def test_a_replica_killed_mid_call_has_its_batches_rerun_and_nothing_booked_twice(cluster):
    reqs = _requests(30, "k")
    local = PureLLM().generate(reqs)
    llm = ray_llm.RayLLM(
        functools.partial(pure, 0.15), _exec(batch_size=2, max_restarts=1), show_progress=False
    )
    try:
        victim = llm.replica_pids()[1]
        arrived = threading.Event()
        seen: list[int] = []

        def on_result(i, g):
            seen.append(i)
            if len(seen) == 6:
                arrived.set()

        def killer():
            arrived.wait(60)
            os.kill(victim, signal.SIGKILL)

        t = threading.Thread(target=killer)
        t.start()
        got = llm.generate(reqs, "it2", on_result=on_result)
        t.join()
        assert [g.text for g in got] == [g.text for g in local]  # no sample lost or changed
        assert sorted(seen) == list(range(30))  # every request answered exactly once
        assert llm.usage.requests == 30  # booked once, though some ran twice
        report = llm.cost_report()
        assert report["replicas"][1]["lost_batches"] >= 1
        assert report["reruns_after_replica_death"] >= 1
        want = sum(g.prompt_tokens * 1.0 + g.completion_tokens * 2.0 for g in local) / 1000
        assert report["cost"] == pytest.approx(want)
        assert victim not in llm.replica_pids()  # Ray restarted the replica in a new process
    finally:
        llm.close()


@pytest.mark.ray
def test_max_cost_is_checked_on_the_driver_before_anything_is_sent(cluster):
    llm = ray_llm.RayLLM(pure, _exec(), max_cost=0.5, show_progress=False)
    try:
        with pytest.raises(BudgetExceeded, match="max_cost"):
            llm.generate(_requests(50), "too-big")  # worst case ~50 x 0.048 > 0.5
        assert llm.usage.requests == 0
        assert all(r["requests"] == 0 for r in llm.cost_report()["replicas"])
        assert llm.generate(_requests(1), "small")[0].text  # a batch that fits still goes
    finally:
        llm.close()


@pytest.mark.ray
def test_the_request_cache_sits_on_the_driver_in_front_of_the_replicas(cluster, tmp_path):
    inner = ray_llm.RayLLM(pure, _exec(), show_progress=False)
    llm = CachedLLM(inner, tmp_path / "cache.sqlite")
    try:
        reqs = _requests(9)
        first = llm.generate(reqs)
        again = llm.generate(reqs)
        assert [g.text for g in again] == [g.text for g in first]
        assert llm.hits == 9 and inner.usage.requests == 9  # the replicas saw each request once
        assert len(llm.store) == 9
    finally:
        llm.close()


@pytest.mark.ray
def test_replicas_that_cannot_be_placed_fail_fast_with_the_setting_named(cluster, monkeypatch):
    monkeypatch.setattr(ray_llm, "READY_TIMEOUT", 3.0)
    with pytest.raises(BackendError, match="execution.replicas=2.*num_gpus=1"):
        ray_llm.RayLLM(pure, _exec(num_gpus=1), show_progress=False)


def test_replica_config_drops_budget_and_cache_and_sizes_threads():
    cfg = generation_config(max_cost=3.0, cache=True)
    rc = ray_llm.replica_config(cfg, ExecutionConfig(num_cpus=2))
    assert rc.max_cost is None and rc.cache is False and rc.threads == 2
    assert ray_llm.replica_config(generation_config(threads=3), ExecutionConfig()).threads == 3


def test_runtime_env_cannot_carry_secrets_into_the_released_config():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="env_vars"):
        ExecutionConfig(runtime_env={"env_vars": {"OPENAI_API_KEY": "sk-x"}})


# ---- Ray Data LLM (vLLM): the row mapping, without vLLM ---------------------------------------
def test_ray_data_rows_carry_each_requests_own_seed_and_come_back_by_index():
    from augpe.scale import ray_data_llm as rd

    reqs = _requests(3)
    reqs[1] = GenerationRequest(reqs[1].messages, 8, 0.7, 0.9, seed=77, stop=("\n\n",))
    rows = [rd.preprocess(rd.request_row(i, r)) for i, r in enumerate(reqs)]
    assert rows[1]["sampling_params"] == {
        "n": 1,
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 8,
        "seed": 77,
        "stop": ["\n\n"],
    }
    assert "stop" not in rows[0]["sampling_params"] and rows[0]["messages"] == reqs[0].messages
    engine_out = {
        **rows[1],
        "generated_text": "a rephrase",
        "num_input_tokens": 11,
        "num_generated_tokens": 3,
    }
    g = rd.answer_of(rd.postprocess(engine_out), "vllm:m")
    assert (g.text, g.prompt_tokens, g.completion_tokens) == ("a rephrase", 11, 3)
    failed = rd.answer_of({"augpe_idx": 2, rd.ERROR_COLUMN: "CUDA OOM"}, "vllm:m")
    assert failed.text is None and "OOM" in (failed.error or "")


def test_ray_data_vllm_without_its_dependencies_names_what_to_install(monkeypatch):
    import builtins

    from augpe.scale import ray_data_llm as rd

    real_import = builtins.__import__

    def no_llm(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "ray.data" and fromlist and "llm" in fromlist:
            raise ImportError("No module named 'vllm'")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", no_llm)
    with pytest.raises(BackendError, match=r"ray\[llm\]"):
        rd._import_ray_data_llm()


def test_engine_ray_with_vllm_goes_through_ray_data_unless_actors_are_asked(monkeypatch):
    from augpe.scale import ray_data_llm as rd

    made = []
    monkeypatch.setattr(
        rd.RayDataVLLM, "from_config", classmethod(lambda c, *a, **k: made.append(a))
    )
    monkeypatch.setattr(ray_llm, "RayLLM", lambda *a, **k: "actors")
    cfg = generation_config(backend="vllm", model="org/m")
    ray_llm.make_ray_llm(cfg, ExecutionConfig(engine="ray"))
    assert made
    assert ray_llm.make_ray_llm(cfg, ExecutionConfig(engine="ray", vllm="actors")) == "actors"
