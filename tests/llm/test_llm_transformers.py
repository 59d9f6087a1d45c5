"""The `transformers` backend on a tiny randomly initialised Llama (CPU), built offline in the test.

The model's text is gibberish; what is checked is the machinery: batching with left padding,
per-request seeds, per-row token limits and stop strings, token counts, loading from a folder.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from fakes.tiny_lm import build_tiny_lm, save_tiny_lm

from augpe.config import generation_config
from augpe.errors import ConfigError
from augpe.llm import make_llm
from augpe.llm.backends.transformers import TransformersLLM, resolve_device_dtype
from augpe.llm.base import GenerationRequest


@pytest.fixture(scope="module")
def tiny():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 2-layer model gains nothing from threads on a shared CPU
    yield build_tiny_lm(seed=0)
    torch.set_num_threads(threads)


def llm_of(tiny, batch_size: int = 4) -> TransformersLLM:
    model, tok = tiny
    return TransformersLLM(
        model, tok, name="transformers:tiny", batch_size=batch_size, show_progress=False
    )


def req(
    i: int, words: str = "tea", max_tokens: int = 12, seed: int | None = None, **kw
) -> GenerationRequest:
    content = f"Write about {words} " + "x" * i  # different lengths: the batch needs padding
    return GenerationRequest(
        [{"role": "user", "content": content}],
        max_tokens,
        kw.pop("temperature", 1.0),
        kw.pop("top_p", 0.95),
        seed=i if seed is None else seed,
        **kw,
    )


def test_every_request_is_answered_in_order_with_its_token_counts(tiny):
    llm = llm_of(tiny)
    reqs = [req(i, max_tokens=4 + i) for i in range(6)]
    gens = llm.generate(reqs, "tiny")
    assert len(gens) == 6
    tok = tiny[1]
    for r, g in zip(reqs, gens):
        assert g.error is None and g.text is not None and g.model == "transformers:tiny"
        assert g.prompt_tokens == len(
            tok(llm.render(r.messages), add_special_tokens=False)["input_ids"]
        )
        assert 0 < g.completion_tokens <= r.max_tokens  # each row stops at its own limit
        assert g.finish_reason in ("stop", "length")
    assert llm.usage.requests == 6 and llm.usage.completion_tokens == sum(
        g.completion_tokens for g in gens
    )
    assert tok.padding_side == "left"


def test_a_seed_gives_the_same_sample_whatever_batch_it_is_in(tiny):
    reqs = [req(i, max_tokens=10) for i in range(5)]
    together = [g.text for g in llm_of(tiny, batch_size=5).generate(reqs)]
    alone = [g.text for g in llm_of(tiny, batch_size=1).generate(list(reversed(reqs)))][::-1]
    assert together == alone
    reseeded = llm_of(tiny, batch_size=5).generate(
        [req(i, max_tokens=10, seed=1000 + i) for i in range(5)]
    )
    assert [g.text for g in reseeded] != together


def test_temperature_zero_is_greedy_and_ignores_the_seed(tiny):
    gens = llm_of(tiny).generate([req(0, seed=s, temperature=0.0) for s in (1, 2, 3)])
    assert len({g.text for g in gens}) == 1


def test_a_stop_string_ends_the_answer_before_it(tiny):
    llm = llm_of(tiny)
    (free,) = llm.generate([req(0, max_tokens=16, temperature=0.0)])
    assert free.text and len(free.text) >= 4
    stop = free.text[2:4]
    (stopped,) = llm.generate([req(0, max_tokens=16, temperature=0.0, stop=(stop,))])
    assert stopped.text == free.text[: free.text.find(stop)] and stopped.finish_reason == "stop"
    assert stopped.completion_tokens < free.completion_tokens


def test_from_config_loads_a_local_folder_without_a_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = save_tiny_lm(tmp_path / "tiny-llama")
    cfg = generation_config(backend="transformers", model=str(folder), device="cpu", batch_size=2)
    llm = make_llm(cfg, show_progress=False)
    try:
        assert isinstance(llm, TransformersLLM) and llm.name == "transformers:tiny-llama"
        assert llm.device.type == "cpu" and next(llm.model.parameters()).dtype == torch.float32
        gens = llm.generate([req(0, max_tokens=3), req(1, max_tokens=3)])
        assert all(g.text is not None for g in gens)
    finally:
        llm.close()


def test_the_transformers_backend_needs_a_model_name():
    with pytest.raises(ConfigError, match="generation.model"):
        make_llm(generation_config(backend="transformers"), show_progress=False)


def test_dtype_auto_is_fp32_on_cpu_and_unknown_dtypes_are_rejected():
    assert resolve_device_dtype("cpu", "auto") == ("cpu", torch.float32)
    assert resolve_device_dtype("cpu", "bf16") == ("cpu", torch.bfloat16)
    with pytest.raises(ConfigError, match="generation.dtype"):
        resolve_device_dtype("cpu", "float8")


def test_a_batch_that_fails_fails_only_the_request_that_broke_it(tiny, monkeypatch):
    llm = llm_of(tiny, batch_size=4)
    real = llm._batch

    def picky(requests, prompts):
        if any("poison" in p for p in prompts):
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(requests, prompts)

    monkeypatch.setattr(llm, "_batch", picky)
    gens = llm.generate(
        [req(0, max_tokens=3), req(1, "poison", max_tokens=3), req(2, max_tokens=3)]
    )
    assert [g.text is None for g in gens] == [False, True, False]
    assert "out of memory" in (gens[1].error or "")


@pytest.mark.gpu
def test_bf16_or_fp16_batched_generation_on_a_gpu(tiny):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    model, tok = build_tiny_lm(seed=0, hidden=256, heads=4)
    dev, dtype = resolve_device_dtype(None, "auto")
    assert dev == "cuda" and dtype in (torch.bfloat16, torch.float16)
    llm = TransformersLLM(model.to(dev, dtype), tok, batch_size=8, show_progress=False)
    reqs = [req(i, max_tokens=16) for i in range(16)]
    gens = llm.generate(reqs)
    assert all(g.text is not None and g.completion_tokens > 0 for g in gens)
    again = TransformersLLM(model, tok, batch_size=8, show_progress=False).generate(reqs)
    assert sum(a.text == b.text for a, b in zip(gens, again)) >= 14  # bf16: same batches, same text
    llm.close()


def test_an_answer_prefix_is_continued_by_the_template_and_the_transcript(tiny):
    """A last assistant turn (a prompt set's answer_prefix) starts the reply: the prompt ends
    with it, inside an open assistant turn, in both renderings."""
    from augpe.llm.chat import transcript

    msgs = [
        {"role": "system", "content": "Real examples, quoted."},
        {"role": "user", "content": "Here is a review:"},
        {"role": "assistant", "content": '"'},
    ]
    llm = llm_of(tiny)
    rendered = llm.render(msgs)
    assert rendered.rstrip().endswith('"') and rendered.count("<|im_start|>assistant") == 1
    plain = llm.render(msgs[:-1])
    assert plain.rstrip().endswith("<|im_start|>assistant")  # no prefix: a fresh assistant turn
    assert transcript(msgs).endswith('User: Here is a review:\nAssistant: "')
    assert transcript(msgs[:-1]).endswith("User: Here is a review:\nAssistant:")
