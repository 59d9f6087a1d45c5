"""The persistent request cache: a rerun or a resumed run never pays twice for one completion."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest
from fakes.openai_server import FakeOpenAIServer

from augpe.config import generation_config
from augpe.errors import BackendError
from augpe.llm.backends.openai import OpenAILLM
from augpe.llm.base import GenerationRequest
from augpe.llm.cache import (
    CachedLLM,
    default_cache_path,
    request_key,
    resolve_cache_path,
    wrap_with_cache,
)
from augpe.llm.cost import Budget, BudgetExceeded, Prices, cost_report
from augpe.llm.mixture import MixtureLLM


def req(i: int, seed: int | None = None) -> GenerationRequest:
    return GenerationRequest(
        [{"role": "user", "content": f"Write a review ({i})."}],
        20,
        1.0,
        0.9,
        seed=i if seed is None else seed,
    )


def openai(srv: FakeOpenAIServer, **kw) -> OpenAILLM:
    return OpenAILLM(
        "fake-model", base_url=srv.base_url, preflight=False, show_progress=False, **kw
    )


def test_a_rerun_is_answered_from_the_cache_without_a_single_request(tmp_path):
    path = tmp_path / "cache.sqlite"
    with FakeOpenAIServer() as srv:
        first = CachedLLM(openai(srv), path)
        a = first.generate([req(i) for i in range(5)], "it1")
        first.close()
        sent = len(srv.bodies)
        again = CachedLLM(openai(srv), path)  # a new run: new backend, same cache file
        b = again.generate([req(i) for i in range(5)], "it1")
        again.close()
        assert len(srv.bodies) == sent == 5
    assert [g.text for g in a] == [g.text for g in b]
    assert [g.model for g in b] == ["openai:fake-model"] * 5
    assert (again.hits, again.misses) == (5, 0)
    assert again.usage.requests == 0  # usage counts what was generated (and paid), not cache hits
    assert cost_report(again)["cache_hits"] == 5


def test_only_the_new_requests_of_a_batch_are_sent(tmp_path):
    with FakeOpenAIServer() as srv:
        llm = CachedLLM(openai(srv), tmp_path / "c.sqlite")
        llm.generate([req(i) for i in range(3)])
        out = llm.generate([req(i) for i in range(5)])  # 0..2 cached, 3..4 new
        llm.close()
        assert sorted(b["seed"] for b in srv.bodies) == [0, 1, 2, 3, 4]
    assert all(g.text for g in out) and [g.text.split()[1] for g in out] == [
        "0",
        "1",
        "2",
        "3",
        "4",
    ]


def test_the_key_covers_backend_model_prompt_sampling_parameters_and_seed():
    r = req(0)
    base = request_key("openai:m@x", r)
    variants = [
        request_key("openai:other@x", r),
        request_key("vllm:m", r),
        request_key(
            "openai:m@x", replace(r, messages=[{"role": "user", "content": "Write a review (1)."}])
        ),
        request_key("openai:m@x", replace(r, max_tokens=21)),
        request_key("openai:m@x", replace(r, temperature=0.7)),
        request_key("openai:m@x", replace(r, top_p=1.0)),
        request_key("openai:m@x", replace(r, stop=("\n",))),
        request_key("openai:m@x", replace(r, seed=1)),
    ]
    assert base == request_key("openai:m@x", req(0))
    assert len({base, *variants}) == len(variants) + 1


def test_failed_generations_are_not_cached_and_are_asked_again(tmp_path):
    def plan(body, attempt):
        return "400" if body["seed"] == 1 and attempt == 0 else "ok"

    with FakeOpenAIServer(plan) as srv:
        llm = CachedLLM(openai(srv), tmp_path / "c.sqlite")
        first = llm.generate([req(0), req(1)])
        second = llm.generate([req(0), req(1)])
        llm.close()
        seeds = [b["seed"] for b in srv.bodies]
    assert first[1].text is None and second[1].text
    # seed 0 came from the cache the second time; seed 1 was asked again (the first two requests
    # go out concurrently: their arrival order is not fixed)
    assert sorted(seeds) == [0, 1, 1]
    assert (
        len(
            sqlite3.connect(tmp_path / "c.sqlite").execute("SELECT key FROM completions").fetchall()
        )
        == 2
    )


def test_answers_already_paid_for_survive_a_run_that_dies_midway(tmp_path):
    def plan(body, attempt):
        return "401" if body["seed"] == 4 else "ok"

    path = tmp_path / "c.sqlite"
    with FakeOpenAIServer(plan) as srv:
        llm = CachedLLM(openai(srv, concurrency=1), path, flush_every=1000, flush_seconds=1000)
        with pytest.raises(BackendError):
            llm.generate([req(i) for i in range(8)])
        llm.close()
    rows = sqlite3.connect(path).execute("SELECT COUNT(*) FROM completions").fetchone()[0]
    assert rows == 4  # requests 0..3 were answered before the fatal error and are kept


def test_a_budget_stop_keeps_the_cache_and_cached_requests_cost_nothing(tmp_path):
    path = tmp_path / "c.sqlite"
    prices = Prices(1.0, 2.0)
    with FakeOpenAIServer() as srv:
        llm = CachedLLM(openai(srv, prices=prices, budget=Budget()), path)
        llm.generate([req(i) for i in range(4)])
        llm.close()
        tight = Budget(max_cost=1e-6)  # enough for nothing new
        again = CachedLLM(openai(srv, prices=prices, budget=tight), path)
        assert again.worst_case([req(i) for i in range(4)]) == 0.0
        assert all(
            g.text for g in again.generate([req(i) for i in range(4)])
        )  # all cached: no spend
        with pytest.raises(BudgetExceeded):
            again.generate([req(9)])
        again.close()
        assert len(srv.bodies) == 4


def test_wrap_with_cache_gives_each_mixture_member_its_own_cache_keys(tmp_path):
    with FakeOpenAIServer(model="fake-model") as a, FakeOpenAIServer(model="fake-model") as b:
        mix = MixtureLLM([(openai(a), 1.0), (openai(b), 1.0)])
        cached = wrap_with_cache(mix, tmp_path / "c.sqlite")
        assert cached is mix and all(isinstance(m, CachedLLM) for m in mix.members)
        assert mix.members[0].backend_id != mix.members[1].backend_id  # different endpoints
        mix.generate([req(i) for i in range(10)])
        mix.generate([req(i) for i in range(10)])
        mix.close()
        assert len(a.bodies) + len(b.bodies) == 10
    assert cost_report(mix)["cache_hits"] == 10
    assert wrap_with_cache(mix, None) is mix


def test_default_cache_path_sits_beside_the_run_folder_and_can_be_turned_off(tmp_path):
    out = tmp_path / "runs" / "amazon"
    assert default_cache_path(out) == tmp_path / "runs" / ".augpe-cache" / "requests.sqlite"
    assert resolve_cache_path(generation_config(), out) == default_cache_path(out)
    assert (
        resolve_cache_path(generation_config(cache_path=str(tmp_path / "x.db")), out)
        == tmp_path / "x.db"
    )
    assert resolve_cache_path(generation_config(cache=False), out) is None


def test_non_private_runs_keep_their_own_cache_file(tmp_path):
    # eps = inf texts are selected by clean votes: they must never share the DP runs' cache.
    out = tmp_path / "runs" / "x"
    dp = resolve_cache_path(generation_config(), out)
    nonprivate = resolve_cache_path(generation_config(), out, private=False)
    assert nonprivate != dp
    assert nonprivate.name == "requests.nonprivate.sqlite"
    own = resolve_cache_path(
        generation_config(cache_path=str(tmp_path / "c.db")), out, private=False
    )
    assert own == tmp_path / "c.nonprivate.db"
