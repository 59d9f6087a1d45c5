"""The `openai` backend against real OpenAI-compatible servers on 127.0.0.1.

A real server: xllamacpp serving the embedded SmolLM2 model (llama.cpp's OpenAI API).
A scripted one: tests/fakes/openai_server.py, for what a real local server never does
(reject a key, not know a model, refuse one prompt).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

import pytest
from fakes.llama_server import llama_server
from fakes.openai_server import FakeOpenAIServer

from augpe.config import generation_config
from augpe.errors import BackendError, ConfigError
from augpe.llm import make_llm
from augpe.llm.backends.openai import OpenAILLM
from augpe.llm.base import GenerationRequest
from augpe.llm.chat import messages_to_prompt
from augpe.llm.retry import RetryPolicy

FAST = RetryPolicy(retries=4, base=0.02, cap=0.2)


def req(
    i: int,
    text: str = "Write one sentence about tea.",
    max_tokens: int = 8,
    seed: int | None = None,
):
    return GenerationRequest(
        messages=[{"role": "user", "content": f"{text} ({i})"}],
        max_tokens=max_tokens,
        temperature=0.8,
        top_p=0.95,
        seed=i if seed is None else seed,
    )


@pytest.fixture(scope="module")
def llama_url():
    with llama_server(n_parallel=4) as url:
        yield url
    with pytest.raises(urllib.error.URLError):  # stopped: nothing listens there any more
        urllib.request.urlopen(url + "/models", timeout=2)


# ---- against the real server ---------------------------------------------------------------
def test_chat_requests_are_answered_by_a_real_openai_compatible_server(llama_url):
    llm = OpenAILLM("smollm2", base_url=llama_url, concurrency=4, show_progress=False)
    try:
        gens = llm.generate([req(i, max_tokens=6) for i in range(3)], "chat")
    finally:
        llm.close()
    assert len(gens) == 3
    for g in gens:
        assert g.error is None and g.text and g.model == "openai:smollm2"
        assert 0 < g.completion_tokens <= 6 and g.prompt_tokens > 0
    assert llm.usage.requests == 3 and llm.usage.completion_tokens == sum(
        g.completion_tokens for g in gens
    )


def test_completions_endpoint_is_answered_by_a_real_server(llama_url):
    llm = OpenAILLM("smollm2", base_url=llama_url, api="completions", show_progress=False)
    try:
        (g,) = llm.generate([req(0, "The capital of France is", max_tokens=4)])
    finally:
        llm.close()
    assert g.error is None and g.text is not None and g.completion_tokens > 0


def test_a_seed_gives_the_same_sample_whatever_else_is_in_flight(llama_url):
    llm = OpenAILLM("smollm2", base_url=llama_url, concurrency=4, show_progress=False)
    try:
        alone = llm.generate([req(0, max_tokens=6, seed=1234)])[0].text
        crowd = llm.generate(
            [req(i, max_tokens=6, seed=99 + i) for i in (1, 2)] + [req(0, max_tokens=6, seed=1234)]
        )[-1].text
    finally:
        llm.close()
    assert alone and alone == crowd


def test_make_llm_builds_the_openai_backend_from_config_for_a_local_server(llama_url, monkeypatch):
    monkeypatch.delenv("AUGPE_NO_SUCH_KEY", raising=False)
    cfg = generation_config(
        backend="openai",
        model="smollm2",
        base_url=llama_url,
        api_key_env="AUGPE_NO_SUCH_KEY",
        concurrency=2,
    )
    llm = make_llm(cfg, show_progress=False)
    try:
        assert isinstance(llm, OpenAILLM)
        assert llm.meter.cost == 0.0  # a local server is free unless priced
        assert llm.generate([req(0, max_tokens=4)])[0].text
    finally:
        llm.close()


def test_fault_injecting_proxy_in_front_of_a_real_server_loses_no_sample(llama_url):
    # (slow answers are tested against the scripted server: on a busy CPU the real model's own
    # latency is too close to any timeout short enough for a test)
    faults = ["429", "500", "malformed", "drop", "429-ms", "503"]

    def plan(body, attempt):
        return faults[int(body["seed"]) % len(faults)] if attempt == 0 else "ok"

    with FakeOpenAIServer(plan, upstream=llama_url.removesuffix("/v1"), retry_after="0") as proxy:
        llm = OpenAILLM(
            "smollm2",
            base_url=proxy.base_url,
            timeout=120,
            retry=FAST,
            concurrency=3,
            preflight=False,
            show_progress=False,
        )
        try:
            gens = llm.generate([req(i, max_tokens=4) for i in range(6)], "proxied")
        finally:
            llm.close()
    assert all(g.text for g in gens), [g.error for g in gens]
    assert sum(llm.retries.values()) == 6
    assert proxy.served["ok"] == 6


# ---- against the scripted server -----------------------------------------------------------
def test_a_bad_key_fails_at_construction_naming_its_source_never_the_key(monkeypatch, caplog):
    pytest.importorskip("openai", reason="the openai backend needs the openai package")
    secret = "sk-test-THIS-IS-SECRET-0123456789"
    monkeypatch.setenv("AUGPE_TEST_KEY", secret)
    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer(api_key="sk-the-right-one") as srv:
        cfg = generation_config(
            backend="openai",
            model="fake-model",
            base_url=srv.base_url,
            api_key_env="AUGPE_TEST_KEY",
        )
        with pytest.raises(BackendError) as err:
            make_llm(cfg, show_progress=False)
        assert len(srv.bodies) == 1  # one preflight request, no retry of a 401
    msg = str(err.value)
    assert "401" in msg and "$AUGPE_TEST_KEY" in msg
    assert secret not in msg and secret not in caplog.text


def test_an_unknown_model_fails_at_construction_naming_the_model():
    pytest.importorskip("openai", reason="the openai backend needs the openai package")
    with FakeOpenAIServer(model="fake-model") as srv:
        with pytest.raises(BackendError, match=r"'gpt-nope'.*404"):
            OpenAILLM("gpt-nope", base_url=srv.base_url, show_progress=False)
        assert len(srv.bodies) == 1


def test_the_preflight_request_is_a_single_public_token_request():
    with FakeOpenAIServer() as srv:
        OpenAILLM("fake-model", base_url=srv.base_url, show_progress=False).close()
        (body,) = srv.bodies
    assert body["max_tokens"] == 1
    assert body["messages"] == [{"role": "user", "content": "Reply with the word OK."}]


def test_a_hosted_api_without_a_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("AUGPE_MISSING_KEY", raising=False)
    cfg = generation_config(backend="openai", model="gpt-4o-mini", api_key_env="AUGPE_MISSING_KEY")
    with pytest.raises(BackendError, match="AUGPE_MISSING_KEY"):
        make_llm(cfg, show_progress=False)


def test_the_openai_backend_needs_a_model_name():
    with pytest.raises(ConfigError, match="generation.model"):
        make_llm(
            generation_config(backend="openai", base_url="http://127.0.0.1:9/v1"),
            show_progress=False,
        )


def test_the_key_comes_from_a_key_file_and_is_never_logged_printed_or_dumped(
    tmp_path, caplog, capsys
):
    secret = "sk-file-SECRET-abcdef987654"
    key_file = tmp_path / "key.txt"
    key_file.write_text(secret + "\n")
    key_file.chmod(0o600)
    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer(api_key=secret) as srv:
        cfg = generation_config(
            backend="openai", model="fake-model", base_url=srv.base_url, api_key_file=str(key_file)
        )
        llm = make_llm(cfg, show_progress=True)
        try:
            gens = llm.generate([req(i) for i in range(3)], "keyed")
            shown = repr(llm) + json.dumps(llm.cost_report())
        finally:
            llm.close()
        sent = srv.headers
    assert all(g.text for g in gens)
    assert all(h.get("authorization") == f"Bearer {secret}" for h in sent)  # it was really used
    out, err = capsys.readouterr()
    assert secret not in out + err + caplog.text + shown
    assert secret not in json.dumps(cfg.model_dump(mode="json"))


def test_a_400_fails_only_its_own_sample_and_is_not_retried():
    def plan(body, attempt):
        return "400" if body.get("seed") == 2 else "ok"

    with FakeOpenAIServer(plan) as srv:
        llm = OpenAILLM("fake-model", base_url=srv.base_url, retry=FAST, show_progress=False)
        try:
            gens = llm.generate([req(i) for i in range(4)])
        finally:
            llm.close()
        served_400 = srv.served["400"]
    assert [g.text is None for g in gens] == [False, False, True, False]
    assert "context length" in (gens[2].error or "")
    assert served_400 == 1 and llm.usage.failures == 1


def test_a_key_revoked_mid_run_stops_the_run_instead_of_dropping_every_sample():
    def plan(body, attempt):
        return "401" if body.get("seed") == 3 else "ok"

    with FakeOpenAIServer(plan) as srv:
        llm = OpenAILLM(
            "fake-model", base_url=srv.base_url, retry=FAST, concurrency=1, show_progress=False
        )
        try:
            with pytest.raises(BackendError, match="401"):
                llm.generate([req(i) for i in range(8)])
        finally:
            llm.close()
        assert srv.served["401"] == 1
        assert len(srv.bodies) < 9  # the rest of the batch was never sent


def test_concurrency_is_bounded_by_config():
    with FakeOpenAIServer(ok_delay=0.1) as srv:
        llm = OpenAILLM(
            "fake-model", base_url=srv.base_url, concurrency=3, preflight=False, show_progress=False
        )
        try:
            gens = llm.generate([req(i) for i in range(12)])
        finally:
            llm.close()
        assert all(g.text for g in gens)
        assert 2 <= srv.max_in_flight <= 3


def test_seed_stop_and_sampling_parameters_reach_the_server():
    with FakeOpenAIServer() as srv:
        llm = OpenAILLM("fake-model", base_url=srv.base_url, preflight=False, show_progress=False)
        r = GenerationRequest(
            [{"role": "user", "content": "hi"}], 12, 0.7, 0.9, seed=77, stop=("\n\n",)
        )
        llm.generate([r])
        llm.close()
        (body,) = srv.bodies
    assert body["seed"] == 77 and body["stop"] == ["\n\n"] and body["max_tokens"] == 12
    assert body["temperature"] == 0.7 and body["top_p"] == 0.9 and body["model"] == "fake-model"


def test_completions_mode_sends_a_plain_text_prompt():
    msgs = [
        {"role": "system", "content": "You write reviews."},
        {"role": "user", "content": "One about tea."},
    ]
    with FakeOpenAIServer() as srv:
        llm = OpenAILLM(
            "fake-model",
            base_url=srv.base_url,
            api="completions",
            preflight=False,
            max_tokens_param="max_completion_tokens",
            show_progress=False,
        )
        (g,) = llm.generate([GenerationRequest(msgs, 10, 1.0, 1.0, seed=1)])
        llm.close()
        (body,) = srv.bodies
    assert (
        g.text
        and body["prompt"] == messages_to_prompt(msgs) == "You write reviews.\n\nOne about tea.\n\n"
    )
    assert body["max_tokens"] == 10 and "messages" not in body
