"""Cost accounting and the max-cost guard: a run never sends a batch that could cross its budget."""

from __future__ import annotations

import pytest
from fakes.openai_server import FakeOpenAIServer

from augpe.config import generation_config, parse_config
from augpe.errors import AugpeError
from augpe.llm import make_llm
from augpe.llm.backends.openai import OpenAILLM
from augpe.llm.base import BaseLLM, Generation, GenerationRequest, Usage
from augpe.llm.cost import (
    Budget,
    BudgetExceeded,
    CostMeter,
    Prices,
    cost_report,
    estimate_prompt_tokens,
)
from augpe.llm.mixture import MixtureLLM

PRICES = Prices(input_per_1k=1.0, output_per_1k=2.0)


def req(i: int, max_tokens: int = 50) -> GenerationRequest:
    return GenerationRequest(
        [{"role": "user", "content": f"Write a short review ({i})."}], max_tokens, 1.0, 1.0, seed=i
    )


def priced(srv: FakeOpenAIServer, budget: Budget, prices: Prices = PRICES) -> OpenAILLM:
    return OpenAILLM(
        "fake-model",
        base_url=srv.base_url,
        prices=prices,
        budget=budget,
        preflight=False,
        show_progress=False,
    )


def test_cost_is_booked_from_the_usage_the_server_reports():
    with FakeOpenAIServer() as srv:
        llm = priced(srv, Budget())
        try:
            gens = llm.generate([req(i) for i in range(3)], "it1")
        finally:
            llm.close()
    p = sum(g.prompt_tokens for g in gens)
    c = sum(g.completion_tokens for g in gens)
    assert p > 0 and c > 0
    assert llm.meter.cost == pytest.approx(p * 1.0 / 1000 + c * 2.0 / 1000)
    report = cost_report(llm)
    assert report["cost_by_batch"] == {"it1": pytest.approx(llm.meter.cost)}
    assert report["prompt_tokens"] == p and report["completion_tokens"] == c
    assert (
        llm.meter.budget.spent == pytest.approx(llm.meter.cost) and llm.meter.budget.reserved == 0
    )


def test_budget_exceeded_is_raised_before_a_batch_that_could_cross_max_cost_is_sent():
    batch = [req(i) for i in range(4)]
    worst = CostMeter(PRICES).worst_case(batch)
    with FakeOpenAIServer() as srv:
        llm = priced(srv, Budget(max_cost=worst * 1.05))
        try:
            llm.generate(batch, "it1")  # fits: its worst case is within the budget
            sent = len(srv.bodies)
            spent = llm.meter.cost
            assert 0 < spent < worst  # real answers are shorter than max_tokens
            with pytest.raises(BudgetExceeded, match="max_cost"):
                llm.generate([req(i) for i in range(10, 14)], "it2")
            assert len(srv.bodies) == sent  # nothing of the refused batch was sent
        finally:
            llm.close()
    assert llm.meter.budget.spent == pytest.approx(spent)
    assert spent <= llm.meter.budget.max_cost and llm.meter.budget.reserved == 0


def test_budget_exceeded_is_an_augpe_error_the_cli_can_report():
    assert issubclass(BudgetExceeded, AugpeError)


def test_the_preflight_is_counted_against_the_budget():
    with FakeOpenAIServer() as srv:
        budget = Budget(max_cost=0.0001)  # less than a 1-token request's worst case
        with pytest.raises(BudgetExceeded):
            OpenAILLM(
                "fake-model",
                base_url=srv.base_url,
                prices=PRICES,
                budget=budget,
                show_progress=False,
            )
        assert srv.bodies == []


def test_worst_case_charges_every_request_its_max_tokens_and_overestimates_the_prompt():
    r = req(0, max_tokens=100)
    assert estimate_prompt_tokens(r) >= len(r.messages[0]["content"]) / 4
    assert CostMeter(PRICES).worst_case([r]) == pytest.approx(
        (estimate_prompt_tokens(r) * 1.0 + 100 * 2.0) / 1000
    )
    assert CostMeter(Prices()).worst_case([r]) == 0.0  # free backends never trip the guard


def test_a_mixture_checks_the_whole_batch_against_the_shared_budget_before_sending_any_of_it():
    with FakeOpenAIServer(model="fake-model") as a, FakeOpenAIServer(model="fake-model") as b:
        budget = Budget()
        la, lb = priced(a, budget), priced(b, budget)
        mix = MixtureLLM([(la, 1.0), (lb, 1.0)])
        batch = [req(i) for i in range(20)]
        budget.max_cost = 0.9 * (la.meter.worst_case(batch))  # each half fits, the whole does not
        try:
            with pytest.raises(BudgetExceeded, match="all backends"):
                mix.generate(batch, "it1")
            assert a.bodies == [] and b.bodies == []
            budget.max_cost = 10.0
            gens = mix.generate(batch, "it1")
        finally:
            mix.close()
    assert all(g.text for g in gens)
    assert budget.spent == pytest.approx(la.meter.cost + lb.meter.cost)
    assert cost_report(mix)["cost"] == pytest.approx(budget.spent, abs=1e-6)


def test_prices_and_max_cost_come_from_config_and_are_validated():
    cfg = generation_config(price_per_1k_input=0.15, price_per_1k_output=0.6, max_cost=5.0)
    assert (cfg.price_per_1k_input, cfg.price_per_1k_output, cfg.max_cost) == (0.15, 0.6, 5.0)
    with pytest.raises(AugpeError, match="generation.max_cost"):
        parse_config({"data": {"path": "x.csv"}, "generation": {"max_cost": -1}})


def test_make_llm_gives_openai_the_configured_prices_and_budget():
    with FakeOpenAIServer() as srv:
        cfg = generation_config(
            backend="openai",
            model="fake-model",
            base_url=srv.base_url,
            price_per_1k_input=0.5,
            price_per_1k_output=1.5,
            max_cost=2.0,
        )
        llm = make_llm(cfg, show_progress=False)
        try:
            assert isinstance(llm, OpenAILLM)
            assert llm.meter.prices == Prices(0.5, 1.5) and llm.meter.budget.max_cost == 2.0
            assert llm.meter.cost > 0  # the preflight request was booked
        finally:
            llm.close()


def test_a_backend_without_a_meter_reports_its_tokens_at_zero_cost():
    class Plain(BaseLLM):  # the defaults: no meter, so free
        name = "plain"

        def __init__(self) -> None:
            self.usage = Usage()
            self.usage.add(
                Generation("hi there you", prompt_tokens=5, completion_tokens=3, model="plain")
            )

        def generate(self, requests, desc=""):
            return []

        def close(self) -> None: ...

    report = cost_report(Plain())
    assert (
        report["cost"] == 0.0 and report["prompt_tokens"] == 5 and report["completion_tokens"] == 3
    )
