"""A run's generation totals count its own requests, also when its LLM served an earlier run."""

from __future__ import annotations

from pathlib import Path

from fakes.pe import FakeLLM, HashEmbedder, private_rows, public_pool, small_config, write_jsonl

from augpe.runner import compose as pipeline


def test_a_shared_llm_does_not_carry_an_earlier_runs_tokens_into_the_summary(
    tmp_path: Path,
) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", private_rows(60))
    llm = FakeLLM(public_pool(30))
    first = pipeline.run(
        small_config(data, tmp_path / "a"), show_progress=False, llm=llm, embedder=HashEmbedder(32)
    )
    between = (llm.usage.requests, llm.usage.prompt_tokens, llm.usage.completion_tokens)
    second = pipeline.run(
        small_config(data, tmp_path / "b"), show_progress=False, llm=llm, embedder=HashEmbedder(32)
    )
    after = (llm.usage.requests, llm.usage.prompt_tokens, llm.usage.completion_tokens)
    keys = ("requests", "prompt_tokens", "completion_tokens")
    own = tuple(second.summary["generation"][k] for k in keys)
    assert own == tuple(b - a for a, b in zip(between, after, strict=True))
    assert tuple(first.summary["generation"][k] for k in keys) == between
    assert own[0] > 0
