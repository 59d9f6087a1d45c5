"""The embedded backend's named models (`generation.model`) and how each is prompted."""

from __future__ import annotations

import pytest

from augpe.config import parse_config
from augpe.errors import BackendError
from augpe.llm.backends.embedded import EMBEDDED_MODELS, resolve_model


def test_named_models_resolve_to_their_gguf_and_api() -> None:
    smol, smol_api = resolve_model(None)
    assert smol.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and smol_api == "chat"
    gemma, gemma_api = resolve_model("gemma3-270m")
    assert gemma.name == "gemma-3-270m-q4_k_m.gguf" and gemma.stat().st_size > 200e6
    assert gemma_api == "completions"  # a base model continues text
    assert resolve_model("gemma3-270m", "chat")[1] == "chat"  # an explicit api wins
    assert resolve_model(str(smol))[1] == "chat"  # a path: chat unless told


def test_an_unknown_model_is_refused_with_the_names_listed(tmp_path) -> None:
    with pytest.raises(BackendError) as err:
        resolve_model(str(tmp_path / "missing.gguf"))
    msg = str(err.value)
    assert "generation.model" in msg and "missing.gguf" in msg
    assert all(name in msg for name in EMBEDDED_MODELS)


def test_the_config_takes_a_model_name_and_an_api() -> None:
    cfg = parse_config(
        {"data": {"path": "x.csv"}, "generation": {"model": "gemma3-270m", "api": "completions"}}
    )
    assert cfg.generation.model == "gemma3-270m" and cfg.generation.api == "completions"
    with pytest.raises(Exception, match="api"):
        parse_config({"data": {"path": "x.csv"}, "generation": {"api": "raw"}})
