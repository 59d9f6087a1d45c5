"""The `vllm` backend: unit tests against a stand-in `vllm` module (tests/fakes/fake_vllm.py) that
follows vLLM's documented offline API, and an integration test that runs wherever vLLM and a GPU are.
"""

from __future__ import annotations

import sys

import pytest
from fakes.fake_vllm import make_fake_vllm

from augpe.config import generation_config
from augpe.errors import BackendError, ConfigError
from augpe.llm import make_llm
from augpe.llm.backends.vllm import VLLMLLM
from augpe.llm.base import GenerationRequest
from augpe.llm.chat import messages_to_prompt


@pytest.fixture
def fake_vllm(monkeypatch):
    mod = make_fake_vllm()
    monkeypatch.setitem(sys.modules, "vllm", mod)
    return mod


def req(i: int, text: str = "Write a review", max_tokens: int = 20, **kw) -> GenerationRequest:
    return GenerationRequest(
        [
            {"role": "system", "content": "You write reviews."},
            {"role": "user", "content": f"{text} ({i})."},
        ],
        max_tokens,
        0.9,
        0.95,
        seed=100 + i,
        **kw,
    )


def test_make_llm_builds_the_engine_with_the_configured_parallelism_dtype_and_memory(fake_vllm):
    cfg = generation_config(
        backend="vllm",
        model="org/model-7b",
        tensor_parallel_size=4,
        dtype="bfloat16",
        gpu_memory_utilization=0.8,
        max_model_len=4096,
    )
    llm = make_llm(cfg, show_progress=False)
    assert isinstance(llm, VLLMLLM) and llm.name == "vllm:model-7b"
    (engine,) = fake_vllm.LLM.instances
    assert engine.model == "org/model-7b"
    assert engine.kwargs == {
        "tensor_parallel_size": 4,
        "dtype": "bfloat16",
        "gpu_memory_utilization": 0.8,
        "seed": 0,
        "max_model_len": 4096,
    }


def test_one_batch_goes_to_llm_chat_with_one_seeded_sampling_params_per_request(
    fake_vllm, monkeypatch
):
    llm = VLLMLLM("m", show_progress=False)
    reqs = [req(i, stop=("\n\n",)) for i in range(5)]
    captured = []
    real_chat = fake_vllm.LLM.chat

    def spy(self, messages, sampling_params=None, use_tqdm=True, **kw):
        captured.extend(sampling_params)
        return real_chat(self, messages, sampling_params, use_tqdm, **kw)

    monkeypatch.setattr(fake_vllm.LLM, "chat", spy)
    gens = llm.generate(reqs, "it1")
    engine = fake_vllm.LLM.instances[0]
    assert engine.calls == [("chat", 5)]  # the whole batch at once: vLLM schedules it
    assert [p.seed for p in captured] == [100 + i for i in range(5)]
    assert all(
        p.max_tokens == 20
        and p.temperature == 0.9
        and p.top_p == 0.95
        and p.stop == ["\n\n"]
        and p.n == 1
        for p in captured
    )
    assert [g.text.split()[1] for g in gens] == [str(100 + i) for i in range(5)]  # in request order
    assert all(
        g.model == "vllm:m" and g.completion_tokens > 0 and g.prompt_tokens > 0 for g in gens
    )
    assert llm.usage.requests == 5


def test_one_invalid_prompt_fails_only_its_own_sample(fake_vllm):
    llm = VLLMLLM("m", show_progress=False)
    gens = llm.generate([req(0), req(1, "TOO LONG"), req(2), req(3)])
    assert [g.text is None for g in gens] == [False, True, False, False]
    assert "maximum model length" in (gens[1].error or "")
    assert llm.usage.failures == 1


def test_completions_mode_sends_plain_prompts_to_llm_generate(fake_vllm):
    llm = VLLMLLM("m", api="completions", show_progress=False)
    r = req(0)
    (g,) = llm.generate([r])
    engine = fake_vllm.LLM.instances[0]
    assert engine.calls == [("generate", 1)] and engine.seen == [messages_to_prompt(r.messages)]
    assert g.text


def test_a_model_vllm_cannot_load_is_a_backend_error_naming_it(fake_vllm):
    with pytest.raises(BackendError, match="does-not-exist"):
        VLLMLLM("org/does-not-exist", show_progress=False)


def test_without_vllm_installed_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(BackendError, match=r"pip install 'augpe\[vllm\]'"):
        make_llm(generation_config(backend="vllm", model="m"), show_progress=False)


def test_the_vllm_backend_needs_a_model_name(fake_vllm):
    with pytest.raises(ConfigError, match="generation.model"):
        make_llm(generation_config(backend="vllm"), show_progress=False)


@pytest.mark.gpu
def test_real_vllm_generates_seeded_samples_on_a_gpu(tmp_path):
    vllm = pytest.importorskip("vllm")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    assert hasattr(vllm, "LLM") and hasattr(vllm, "SamplingParams")
    from fakes.tiny_lm import save_tiny_lm

    folder = save_tiny_lm(
        tmp_path / "tiny-llama", hidden=256, heads=4
    )  # head_dim 64: every kernel has it
    llm = VLLMLLM(
        str(folder),
        dtype="float16",
        gpu_memory_utilization=0.3,
        max_model_len=1024,
        show_progress=False,
        engine_kwargs={"enforce_eager": True},
    )
    try:
        reqs = [req(i, max_tokens=12) for i in range(8)]
        gens = llm.generate(reqs)
        again = llm.generate(list(reversed(reqs)))[::-1]
    finally:
        llm.close()
    assert all(g.text is not None and g.completion_tokens > 0 for g in gens)
    assert [g.text for g in gens] == [g.text for g in again]  # per-request seeds: order-independent
