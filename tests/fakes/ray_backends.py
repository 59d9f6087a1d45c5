"""Backends handed to Ray replicas by the tests (imported inside the replica processes)."""

from __future__ import annotations

import json
import os
import time
import zlib
from pathlib import Path

import numpy as np

from augpe.llm.base import BaseLLM, Generation, Usage
from augpe.llm.cost import CostMeter, Prices

WORDS = ["good", "nice", "fine", "tasty", "fresh", "sweet", "crisp", "mild", "snack", "drink"]


class PureLLM(BaseLLM):
    """Each answer is a function of its request alone (prompt + seed), like a seeded real model.
    Priced (1 per 1k prompt tokens, 2 per 1k completion tokens) so that cost booking shows."""

    name = "pure-fake"

    def __init__(self, delay: float = 0.0) -> None:
        self.usage = Usage()
        self.meter = CostMeter(Prices(1.0, 2.0))
        self.delay = delay

    def generate(self, requests, desc=""):
        out = []
        for r in requests:
            if self.delay:
                time.sleep(self.delay)
            rng = np.random.default_rng([zlib.crc32(str(r.messages).encode()), r.seed])
            text = " ".join(WORDS[i] for i in rng.integers(len(WORDS), size=12)).capitalize()
            g = Generation(
                text=text + ".",
                prompt_tokens=len(str(r.messages).split()),
                completion_tokens=12,
                finish_reason="stop",
                model=self.name,
            )
            self.usage.add(g)
            out.append(g)
        return out

    def close(self) -> None: ...


def pure(delay: float = 0.0) -> PureLLM:
    return PureLLM(delay)


class _ServerSpy:
    """Stands in front of xllamacpp's in-process server; appends every body to a file."""

    def __init__(self, server, path: Path) -> None:
        self.server, self.path = server, path

    def handle_chat_completions(self, body, *args, **kwargs):
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(body) + "\n")
        return self.server.handle_chat_completions(body, *args, **kwargs)


def spied_embedded(spy_dir: str, cfg_json: dict):
    """The replica's real backend (make_llm on its config), with a spy on the xllamacpp server."""
    from augpe.scale.ray_llm import build_backend

    llm = build_backend(cfg_json)
    llm._server = _ServerSpy(llm._server, Path(spy_dir) / f"bodies-{os.getpid()}.jsonl")
    return llm
