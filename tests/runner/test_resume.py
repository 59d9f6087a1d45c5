"""Kill at several points, resume: the same corpus and ledger, byte for byte, noise never redrawn."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from fakes.pe import FILLER_WORDS, HashEmbedder, private_rows, small_config, write_jsonl

from augpe.llm.base import BaseLLM, Generation, Usage
from augpe.privacy import mechanism
from augpe.runner import compose as pipeline


class Killer(Exception):
    pass


class PureLLM(BaseLLM):
    """Each answer is a function of its request alone (prompt + seed), like a seeded real model."""

    name = "pure-fake"

    def __init__(self, kill_at: int = 0) -> None:
        self.usage, self.n_calls, self.kill_at = Usage(), 0, kill_at

    def generate(self, requests, desc=""):
        self.n_calls += 1
        if self.n_calls == self.kill_at:
            raise Killer(f"killed at generate call {self.n_calls}")
        out = []
        for r in requests:
            rng = np.random.default_rng([zlib.crc32(str(r.messages).encode()), r.seed])
            words = " ".join(FILLER_WORDS[i] for i in rng.integers(len(FILLER_WORDS), size=12))
            g = Generation(text=words.capitalize() + ".", completion_tokens=12, model=self.name)
            self.usage.add(g)
            out.append(g)
        return out

    def close(self) -> None: ...


class KillingEmbedder(HashEmbedder):
    def __init__(self, kill_at: int) -> None:
        super().__init__()
        self.n_calls, self.kill_at = 0, kill_at

    def encode(self, texts, desc=""):
        self.n_calls += 1
        if self.n_calls == self.kill_at:
            raise Killer(f"killed at encode call {self.n_calls}")
        return super().encode(texts, desc)


def _cfg(tmp_path, name):
    data = tmp_path / "d.jsonl"
    if not data.exists():
        write_jsonl(data, private_rows(60))
    return small_config(data, tmp_path / name, pe={"iterations": 3, "samples": 10, "variations": 3})


def _artefacts(run_dir):
    """Corpus bytes, and the ledger but for its run nonce (random per fresh run, by design)."""
    ledger = json.loads((run_dir / "ledger.json").read_text())
    assert len(ledger.pop("run_nonce")) == 32
    return {"synthetic.jsonl": (run_dir / "synthetic.jsonl").read_bytes(), "ledger.json": ledger}


@pytest.fixture
def reference(tmp_path):
    cfg = _cfg(tmp_path, "ref")
    pipeline.run(cfg, show_progress=False, llm=PureLLM(), embedder=HashEmbedder())
    return _artefacts(tmp_path / "ref")


@pytest.mark.parametrize(
    "where, at",
    [
        ("generate", 1),
        ("generate", 2),
        ("generate", 3),
        ("generate", 4),
        ("encode", 2),
        ("encode", 3),
        ("encode", 4),
    ],
)
def test_kill_anywhere_then_resume_gives_identical_corpus_and_ledger(
    tmp_path, reference, monkeypatch, where, at
):
    cfg = _cfg(tmp_path, f"killed-{where}-{at}")
    llm = PureLLM(at) if where == "generate" else PureLLM()
    emb = KillingEmbedder(at) if where == "encode" else HashEmbedder()
    with pytest.raises(Killer):
        pipeline.run(cfg, show_progress=False, llm=llm, embedder=emb)
    state = cfg.output.dir + "/state"
    import pathlib

    counts_before = (pathlib.Path(state) / "class_counts.json").exists()
    stored = {p.name: p.read_bytes() for p in pathlib.Path(state).glob("votes_*.json")}
    draws: list[float] = []
    real = mechanism.add_gaussian_noise
    monkeypatch.setattr(
        mechanism, "add_gaussian_noise", lambda h, s, r: draws.append(s) or real(h, s, r)
    )
    pipeline.run(cfg, resume=True, show_progress=False, llm=PureLLM(), embedder=HashEmbedder())
    for name, blob in stored.items():  # histograms drawn before the kill are reused, unchanged
        assert (pathlib.Path(state) / name).read_bytes() == blob
    assert len(draws) == 4 - len(stored) - counts_before  # 3 votes + class counts, each drawn once
    assert _artefacts(pathlib.Path(cfg.output.dir)) == reference
