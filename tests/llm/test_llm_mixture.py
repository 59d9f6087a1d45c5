"""Several models in one run: a weighted mixture routes each request by its seed, deterministically."""

from __future__ import annotations

import sys
from collections import Counter

import pytest
from fakes.fake_vllm import make_fake_vllm
from fakes.openai_server import FakeOpenAIServer
from fakes.tiny_lm import build_tiny_lm

from augpe.config import generation_config, parse_config
from augpe.errors import ConfigError
from augpe.llm import make_llm
from augpe.llm.backends.openai import OpenAILLM
from augpe.llm.backends.transformers import TransformersLLM
from augpe.llm.backends.vllm import VLLMLLM
from augpe.llm.base import GenerationRequest
from augpe.llm.mixture import MixtureLLM, pick_by_weight, route_fraction


@pytest.fixture
def one_thread():
    """A 2-layer model gains nothing from threads on a shared CPU; restore the setting after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def fake_vllm(monkeypatch):
    mod = make_fake_vllm()
    monkeypatch.setitem(sys.modules, "vllm", mod)
    return mod


def req(i: int) -> GenerationRequest:
    return GenerationRequest(
        [{"role": "user", "content": f"Write a review ({i})."}], 8, 1.0, 0.95, seed=i
    )


def test_routing_follows_the_weights_and_depends_only_on_the_seed(fake_vllm):
    mix = MixtureLLM(
        [(VLLMLLM("a", show_progress=False), 3.0), (VLLMLLM("b", show_progress=False), 1.0)]
    )
    routes = [mix.route(s) for s in range(20_000)]
    share = Counter(routes)[0] / len(routes)
    assert 0.73 < share < 0.77
    assert routes == [mix.route(s) for s in range(20_000)]  # deterministic, across calls
    assert route_fraction(12345) == route_fraction(12345) and 0.0 <= route_fraction(-7) < 1.0
    assert routes[:40].count(0) not in (0, 40)  # neighbouring seeds are spread, not blocked


def test_a_weighted_pick_splits_the_unit_interval_by_weight_among_the_members_asked():
    weights = [1.0, 2.0, 1.0]
    grid = [i / 1000 for i in range(1000)]
    picks = Counter(pick_by_weight(f, weights) for f in grid)
    assert picks == {0: 250, 1: 500, 2: 250}
    assert [pick_by_weight(f, weights) for f in (0.0, 0.2499, 0.25, 0.7499, 0.75, 0.9999)] == [
        0,
        0,
        1,
        1,
        2,
        2,
    ]
    among = Counter(pick_by_weight(f, weights, among=[0, 2]) for f in grid)
    assert among == {0: 500, 2: 500}  # member 1 is never picked; the others share its weight
    assert {pick_by_weight(f, weights, among=[1]) for f in grid} == {1}


def test_each_sample_is_written_by_the_model_its_seed_routes_to_and_says_so(fake_vllm, one_thread):
    model, tok = build_tiny_lm(seed=0)
    with FakeOpenAIServer() as srv:
        members = [
            (
                OpenAILLM(
                    "fake-model", base_url=srv.base_url, preflight=False, show_progress=False
                ),
                1.0,
            ),
            (VLLMLLM("org/vllm-model", show_progress=False), 1.0),
            (TransformersLLM(model, tok, name="transformers:tiny", show_progress=False), 1.0),
        ]
        mix = MixtureLLM(members)
        reqs = [req(i) for i in range(24)]
        gens = mix.generate(reqs, "it1")
        mix.close()
        assert len(srv.bodies) == sum(1 for r in reqs if mix.route(r.seed) == 0)
    names = [m.name for m, _ in members]
    assert [g.model for g in gens] == [names[mix.route(r.seed)] for r in reqs]
    assert {g.model for g in gens} == set(names)  # every member took part
    assert all(g.text is not None for g in gens)
    assert mix.usage.requests == 24 and set(mix.usage.by_model) == set(names)
    assert mix.name == "mixture[openai:fake-model=1,vllm:vllm-model=1,transformers:tiny=1]"


def test_make_llm_builds_the_mixture_from_config_with_one_shared_budget(fake_vllm):
    with FakeOpenAIServer() as srv:
        cfg = generation_config(
            max_cost=3.0,
            mixture=[
                {
                    "backend": "openai",
                    "model": "fake-model",
                    "base_url": srv.base_url,
                    "weight": 2,
                    "price_per_1k_output": 0.6,
                },
                {"backend": "vllm", "model": "org/vllm-model", "weight": 1},
            ],
        )
        llm = make_llm(cfg, show_progress=False)
        try:
            assert isinstance(llm, MixtureLLM)
            assert [m.name for m in llm.members] == ["openai:fake-model", "vllm:vllm-model"]
            assert llm.weights == [2.0, 1.0]
            budgets = {id(m.meter.budget) for m in llm.members}
            assert len(budgets) == 1 and llm.members[0].meter.budget.max_cost == 3.0
            assert llm.members[0].meter.prices.output_per_1k == 0.6
            assert llm.members[1].meter.prices.output_per_1k == 0.0  # local: free unless priced
            assert all(g.text for g in llm.generate([req(i) for i in range(6)]))
        finally:
            llm.close()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"backend": "openai", "model": "m"}, r"mixture\[0\]: needs a 'weight' > 0"),
        ({"backend": "openai", "weight": 0}, r"mixture\[0\]: needs a 'weight' > 0"),
        ({"weight": 1, "temperature": 0.2}, r"'temperature' is a run-wide setting"),
        ({"weight": 1, "max_cost": 9}, r"'max_cost' is a run-wide setting"),
        ({"weight": 1, "modle": "x"}, r"mixture\[0\]: unknown key 'modle'"),
        ({"weight": 1, "backend": "claude"}, r"mixture\[0\]\.backend"),
    ],
)
def test_mixture_entries_are_validated_with_messages_that_name_the_entry(entry, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"data": {"path": "x.csv"}, "generation": {"mixture": [entry]}})


def test_a_mixture_member_inherits_unset_settings_from_generation():
    cfg = generation_config(
        backend="openai",
        concurrency=7,
        timeout=9.0,
        price_per_1k_input=0.5,
        mixture=[
            {"backend": "openai", "model": "m", "weight": 1},
            {"backend": "embedded", "n_parallel": 2, "weight": 1},
        ],
    )
    other, _ = cfg.mixture_member(1)  # another backend: the shared settings only
    assert (other.backend, other.price_per_1k_input, other.n_parallel) == ("embedded", 0.5, 2)
    member, weight = cfg.mixture_member(0)
    assert (member.backend, member.model, member.concurrency, member.timeout, weight) == (
        "openai",
        "m",
        7,
        9.0,
        1.0,
    )
    assert member.mixture == []
