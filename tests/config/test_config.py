"""The config models: one typed generation section per backend, settings of another backend refused
with a message naming the setting and its backend, defaults that need no `backend` key."""

from __future__ import annotations

from pathlib import Path

import pytest

from augpe.config import (
    EmbeddedGeneration,
    OpenAIGeneration,
    TransformersGeneration,
    VLLMGeneration,
    parse_config,
)
from augpe.errors import ConfigError


def _cfg(tmp_path: Path, **generation: object):
    return parse_config({"data": {"path": str(tmp_path / "d.csv")}, "generation": generation})


def test_each_backend_gets_its_own_typed_settings(tmp_path: Path) -> None:
    assert isinstance(_cfg(tmp_path).generation, EmbeddedGeneration)  # the default, no key
    assert isinstance(_cfg(tmp_path, n_parallel=4).generation, EmbeddedGeneration)
    assert isinstance(_cfg(tmp_path, backend="openai").generation, OpenAIGeneration)
    assert isinstance(_cfg(tmp_path, backend="vllm", dtype="bfloat16").generation, VLLMGeneration)
    tf = _cfg(tmp_path, backend="transformers", device="cpu").generation
    assert isinstance(tf, TransformersGeneration) and tf.device == "cpu"


def test_a_setting_of_another_backend_is_refused_naming_its_backend(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _cfg(tmp_path, backend="openai", n_parallel=4, gpu_memory_utilization=0.5)
    msg = str(err.value)
    assert "generation: 'n_parallel' is a setting of the embedded backend" in msg
    assert "backend 'openai'" in msg and "generation.openai" not in msg
    with pytest.raises(ConfigError, match="'base_url' is a setting of the openai backend"):
        _cfg(tmp_path, base_url="http://127.0.0.1:8000/v1")  # embedded by default
    with pytest.raises(ConfigError, match="generation.no_such_key: Extra inputs"):
        _cfg(tmp_path, no_such_key=1)
    with pytest.raises(ConfigError, match="generation.backend must be one of"):
        _cfg(tmp_path, backend="gpt")


def test_a_dumped_config_loads_back_as_the_same_backend(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, backend="openai", base_url="http://127.0.0.1:9/v1", concurrency=3)
    again = parse_config(cfg.dump())
    assert again == cfg and isinstance(again.generation, OpenAIGeneration)
