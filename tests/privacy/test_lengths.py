"""privacy.lengths: a DP length distribution (one Gaussian release) sets the RANDOM API's targets."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from fakes.pe import CLASSES, FakeLLM, HashEmbedder, class_text, small_config, write_jsonl

from augpe.config import load_config
from augpe.privacy.accounting import calibrate_sigma
from augpe.privacy.ledger import GaussianRelease, Ledger
from augpe.privacy.lengths import LENGTH_EDGES, LengthSampler, length_bin, length_histogram
from augpe.privacy.plan import PrivacySettings, vote_releases
from augpe.release.export import release, release_dataset
from augpe.runner import compose as pipeline
from augpe.runner.checks import resolved_config

BINS = len(LENGTH_EDGES) - 1


def _texts(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts = [" ".join(["w"] * int(rng.integers(0, 900))) for _ in range(n)]
    return texts, rng.integers(0, 3, n)


def test_length_bins_cover_every_length_and_long_texts_share_the_last_bin() -> None:
    assert [length_bin(w) for w in (0, 9, 10, 64, 65, 499, 500, 799, 800, 10_000)] == [
        0,
        0,
        1,
        5,
        6,
        12,
        13,
        13,
        13,
        13,
    ]


def test_removing_one_record_moves_the_clean_histogram_by_exactly_one_in_l2() -> None:
    texts, y = _texts(50)
    full = length_histogram(texts, y, 3)
    assert full.shape == (3 * BINS,) and full.sum() == 50
    for i in range(len(texts)):
        rest = length_histogram(texts[:i] + texts[i + 1 :], np.delete(y, i), 3)
        assert np.linalg.norm(full - rest) == pytest.approx(1.0)


def test_removing_one_user_with_all_records_moves_the_histogram_by_at_most_one() -> None:
    texts, y = _texts(60, seed=1)
    users = np.random.default_rng(2).integers(0, 7, 60)
    full = length_histogram(texts, y, 3, users)
    assert full.sum() == pytest.approx(len(set(users.tolist())))  # each user adds weight 1
    for u in set(users.tolist()):
        keep = users != u
        rest = length_histogram([t for t, k in zip(texts, keep) if k], y[keep], 3, users[keep])
        assert np.linalg.norm(full - rest) <= 1.0 + 1e-12


def test_the_sampler_draws_inside_surviving_bins_and_falls_back_when_none_survives() -> None:
    sigma = 5.0
    noisy = np.zeros((3, BINS))
    noisy[0, 2] = 100.0  # class 0: 20-29 words
    noisy[0, 9] = 9.0  # below 2 sigma: dropped
    noisy[1, 6] = 50.0  # class 1: 65-79 words
    # class 2: nothing above 2 sigma -> all classes pooled
    s = LengthSampler(noisy.ravel(), 3, sigma)
    rng = np.random.default_rng(0)
    assert {20 <= s.draw(0, rng, 50, 1000) < 30 for _ in range(200)} == {True}
    assert {65 <= s.draw(1, rng, 50, 1000) < 80 for _ in range(200)} == {True}
    pooled = [s.draw(2, rng, 50, 1000) for _ in range(600)]
    assert {20 <= w < 30 or 65 <= w < 80 for w in pooled} == {True}
    assert 0.55 < np.mean([w < 30 for w in pooled]) < 0.78  # 100 : 50
    assert s.draw(1, rng, 50, 70) <= 70  # capped by what max_tokens leaves room for
    assert s.mean_words(0) == pytest.approx(24.5) and s.mean_words(1) == pytest.approx(72.0)
    empty = LengthSampler(np.zeros(3 * BINS), 3, sigma)
    assert empty.draw(0, rng, 50, 1000) == 50 and empty.mean_words(0) is None
    # exactly two draws either way: the stream after it does not depend on the histogram
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    s.draw(0, a, 50, 1000), empty.draw(0, b, 50, 1000)
    assert a.random() == b.random()


def _cfg(tmp_path, lengths: bool = True):
    rng = np.random.default_rng(3)
    rows = []
    for i in range(240):  # posclass records run 65-79 words, negclass 10-19
        cls = CLASSES[i % 2]
        words = int(rng.integers(65, 80)) if cls == "posclass" else int(rng.integers(10, 20))
        rows.append({"text": class_text(cls, rng, words), "label": cls})
    data = write_jsonl(tmp_path / "private.jsonl", rows)
    return small_config(
        data,
        tmp_path / "run",
        privacy={"lengths": lengths},
        pe={"iterations": 2, "samples": 12, "variations": 2},
    )


def test_a_run_books_the_lengths_and_asks_the_random_api_for_them(tmp_path) -> None:
    cfg = _cfg(tmp_path)
    llm = FakeLLM()
    result = pipeline.run(cfg, show_progress=False, llm=llm, embedder=HashEmbedder(32))
    ledger = json.loads((result.run_dir / "ledger.json").read_text())
    events = {e["name"]: e for e in ledger["events"]}
    assert events["lengths"]["kind"] == "lengths"
    assert events["lengths"]["sigma"] == calibrate_sigma(2.0, ledger["delta"], 1, share=0.05)
    # the votes got what the counts and the lengths left, at the run's delta
    before = [GaussianRelease(n, events[n]["sigma"], kind=n) for n in ("class_counts", "lengths")]
    assert [events[f"votes_t{t}"]["sigma"] for t in (1, 2)] == [
        v.sigma
        for v in vote_releases(
            PrivacySettings.from_config(resolved_config(cfg)), ledger["delta"], before
        )
    ]
    assert ledger["epsilon"] <= 2.0
    stored = json.loads((result.run_dir / "state" / "lengths.json").read_text())
    assert stored["tag"] == {"classes": ["negclass", "posclass"], "edges": list(LENGTH_EDGES)}
    # the RANDOM API's prompts ask each class for the lengths its private records have
    asked: dict[str, list[int]] = {c: [] for c in CLASSES}
    for p in llm.prompts:
        m = re.search(r"about (\d+) words", p)
        if m and "\n" not in p:  # a RANDOM API prompt (a variation's carries its parent text)
            for c in CLASSES:
                if f'"{c}"' in p or f"Topic: {c}." in p:
                    asked[c].append(int(m.group(1)))
    assert len(asked["posclass"]) >= 3 and len(asked["negclass"]) >= 3
    assert np.median(asked["posclass"]) >= 65 and np.median(asked["negclass"]) < 25
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["length_targets"]["posclass"] > 60 > summary["length_targets"]["negclass"]
    # `augpe budget` lists it with its share of mu^2
    text = Ledger.load(result.run_dir / "ledger.json").summary()
    assert re.search(
        r"lengths \[lengths\]: sigma = [\d.]+ \(sensitivity 1, [\d.]+ under replace-one, [\d.]+% of mu\^2\)",
        text,
    )
    # a resume reuses the stored release and books nothing new
    pipeline.run(cfg, resume=True, show_progress=False, llm=FakeLLM(), embedder=HashEmbedder(32))
    assert json.loads((result.run_dir / "state" / "lengths.json").read_text()) == stored
    assert json.loads((result.run_dir / "ledger.json").read_text())["events"] == ledger["events"]
    # a DP release: it may go with the state into a release folder
    assert any(f.name == "lengths.json" for f in release(result.run_dir, tmp_path / "out", True))
    release_dataset(result.run_dir, tmp_path / "dataset")
    card = (tmp_path / "dataset" / "README.md").read_text(encoding="utf-8")
    assert "1 length-distribution release" in card


def test_without_lengths_no_release_is_made_and_the_share_is_a_checked_setting(tmp_path) -> None:
    cfg = _cfg(tmp_path, lengths=False)
    llm = FakeLLM()
    result = pipeline.run(cfg, show_progress=False, llm=llm, embedder=HashEmbedder(32))
    kinds = [e["kind"] for e in json.loads((result.run_dir / "ledger.json").read_text())["events"]]
    assert "lengths" not in kinds and not (result.run_dir / "state" / "lengths.json").exists()
    asked = {
        int(m.group(1))
        for p in llm.prompts
        if "\n" not in p and (m := re.search(r"about (\d+) words", p))
    }
    assert asked == {cfg.generation.length.random_words}
    assert json.loads((result.run_dir / "summary.json").read_text())["length_targets"] is None
    (tmp_path / "c.yaml").write_text("privacy: {length_share: 0}\n", encoding="utf-8")
    with pytest.raises(Exception, match="length_share"):
        load_config(tmp_path / "c.yaml")
