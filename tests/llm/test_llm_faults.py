"""Fault injection: a long hosted run survives rate limits, server errors, slow answers, garbage and
dropped connections, with every sample accounted for, in bounded time and a bounded number of tries.

The faults come from tests/fakes/openai_server.py, a real HTTP server on 127.0.0.1; the client is
the real `openai` SDK inside the `openai` backend.
"""

from __future__ import annotations

import random
import time

import pytest
from fakes.openai_server import FakeOpenAIServer, body_key

from augpe.llm.backends.openai import OpenAILLM
from augpe.llm.base import GenerationRequest
from augpe.llm.retry import RetryPolicy, is_retryable_status, parse_retry_after

FAULTS = ["429", "429-ms", "500", "503", "slow", "malformed", "drop"]


def req(i: int) -> GenerationRequest:
    return GenerationRequest(
        [{"role": "user", "content": f"Write a review ({i})."}], 16, 1.0, 0.95, seed=i
    )


def backend(
    srv: FakeOpenAIServer, retries: int = 4, timeout: float = 0.5, concurrency: int = 8
) -> OpenAILLM:
    return OpenAILLM(
        "fake-model",
        base_url=srv.base_url,
        timeout=timeout,
        concurrency=concurrency,
        retry=RetryPolicy(retries=retries, base=0.05, cap=0.4),
        preflight=False,
        show_progress=False,
        rng_seed=0,
    )


def test_every_kind_of_fault_is_retried_and_every_sample_is_accounted_for():
    # Each request meets 0, 1 or 2 faults of every kind before it succeeds.
    def plan(body, attempt):
        s = int(body["seed"])
        n_faults = s % 3
        return FAULTS[(s + attempt) % len(FAULTS)] if attempt < n_faults else "ok"

    n = 21
    with FakeOpenAIServer(plan, slow_seconds=2.5, retry_after="1") as srv:
        llm = backend(srv, timeout=2.0)
        start = time.monotonic()
        try:
            gens = llm.generate([req(i) for i in range(n)], "faulty")
        finally:
            llm.close()
        elapsed = time.monotonic() - start
        served = dict(srv.served)
    expected_faults = sum(i % 3 for i in range(n))
    assert len(gens) == n and all(g.text and g.error is None for g in gens)
    assert [g.text.split()[1] for g in gens] == [
        str(i) for i in range(n)
    ]  # each answer in its place
    assert sum(v for k, v in served.items() if k != "ok") == expected_faults
    # Bounded: one successful answer per sample. (A busy machine may make an "ok" answer miss the
    # timeout now and then; that costs one extra try, never an unbounded number.)
    spurious = served["ok"] - n
    assert 0 <= spurious <= 3
    assert sum(llm.retries.values()) == expected_faults + spurious
    assert llm.retries["timeout"] == served["slow"] + spurious
    assert llm.retries["connection error"] == served["drop"]
    assert llm.retries["malformed answer"] == served["malformed"]
    assert llm.retries["HTTP 429"] == served["429"] + served["429-ms"]
    assert llm.usage.requests == n and llm.usage.failures == 0
    assert elapsed < 20


def test_retry_after_is_honoured_before_the_retry_is_sent():
    def plan(body, attempt):
        return "429" if attempt == 0 and body["seed"] == 0 else "ok"

    with FakeOpenAIServer(plan, retry_after="1") as srv:
        llm = backend(srv)
        try:
            gens = llm.generate([req(0)])
        finally:
            llm.close()
        (t429, k1, f1), (t_ok, k2, f2) = srv.times
    assert gens[0].text and (f1, f2) == ("429", "ok") and k1 == k2
    assert t_ok - t429 >= 0.95  # waited the second the server asked for (not our 0.05 s backoff)


def test_a_429_with_retry_after_holds_back_the_other_requests_too():
    def plan(body, attempt):
        return "429" if attempt == 0 and body["seed"] == 0 else "ok"

    with FakeOpenAIServer(plan, retry_after="1", ok_delay=0.05) as srv:
        llm = backend(srv, concurrency=1)
        try:
            llm.generate([req(i) for i in range(4)])
        finally:
            llm.close()
        times = srv.times
    t429 = next(t for t, _, f in times if f == "429")
    later = [t for t, _, f in times if t > t429]
    assert later and min(later) - t429 >= 0.95


def test_a_request_that_keeps_failing_gives_up_with_an_error_and_the_rest_complete():
    def plan(body, attempt):
        return "500" if body["seed"] == 3 else "ok"

    with FakeOpenAIServer(plan) as srv:
        llm = backend(srv, retries=3)
        try:
            gens = llm.generate([req(i) for i in range(6)])
        finally:
            llm.close()
        tries = [body_key(b) for b in srv.bodies if b["seed"] == 3]
    assert [g.text is None for g in gens] == [False, False, False, True, False, False]
    assert gens[3].error == "gave up after 4 attempts: HTTP 500"
    assert len(tries) == 4 and len(set(tries)) == 1  # the same request: 1 + 3 retries, no more
    assert llm.usage.failures == 1


def test_a_dead_server_is_reported_per_sample_after_bounded_retries():
    with FakeOpenAIServer() as srv:
        url = srv.base_url
    llm = OpenAILLM(
        "fake-model",
        base_url=url,
        timeout=0.5,
        retry=RetryPolicy(2, 0.02, 0.05),
        preflight=False,
        show_progress=False,
    )
    start = time.monotonic()
    try:
        gens = llm.generate([req(0), req(1)])
    finally:
        llm.close()
    assert all(g.text is None and "connection error" in (g.error or "") for g in gens)
    assert time.monotonic() - start < 5


def test_backoff_doubles_with_jitter_and_is_capped():
    policy = RetryPolicy(retries=10, base=1.0, cap=8.0)
    rng = random.Random(0)
    for attempt, full in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 8.0)]:
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert max(delays) - min(delays) > full / 4  # jittered, not lock-step
    assert 30.0 <= policy.delay(0, rng, retry_after=30.0) <= 30.1
    assert policy.delay(0, rng, retry_after=10_000.0) <= policy.retry_after_cap + 0.1


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, 0.0),  # a date in the past
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_header_forms_are_understood(headers, expected):
    assert parse_retry_after(headers) == expected


def test_retry_after_as_an_http_date_counts_from_now():
    assert (
        parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0)
        == 10.0
    )


def test_client_errors_are_not_retryable_and_server_errors_are():
    assert not any(is_retryable_status(s) for s in (400, 401, 403, 404, 422))
    assert all(is_retryable_status(s) for s in (408, 409, 429, 500, 502, 503, 504))
