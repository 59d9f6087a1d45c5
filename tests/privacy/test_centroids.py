"""privacy.centroids: DP class centroids (one Gaussian release) label the released corpus."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from fakes.pe import FakeLLM, HashEmbedder, private_rows, small_config, write_jsonl

from augpe.config import load_config
from augpe.embed.knn import NonFiniteEmbedding
from augpe.pe.output import Soft, Voted
from augpe.privacy import centroids as centroid_module
from augpe.privacy.accounting import calibrate_sigma
from augpe.privacy.centroids import (
    class_embedding_sums,
    nearest_centroid,
    ranked_centroid,
    shares_of,
)
from augpe.privacy.plan import PrivacySettings, vote_releases
from augpe.records.sample import Sample
from augpe.release.export import release, release_dataset
from augpe.runner import compose as pipeline
from augpe.runner.checks import resolved_config


def _data(n: int = 40, d: int = 8, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * rng.uniform(0.1, 5.0, (n, 1)), rng.integers(0, classes, n)


def test_removing_one_record_moves_the_clean_sums_by_exactly_one_in_l2() -> None:
    x, y = _data()
    full = class_embedding_sums(x, y, 3)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        moved = np.linalg.norm(full - class_embedding_sums(x[keep], y[keep], 3))
        assert moved == pytest.approx(1.0, abs=1e-12)  # unit-normalised, whatever its norm was
    assert full.shape == (3, 8)


def test_removing_one_user_with_all_records_moves_the_sums_by_at_most_one() -> None:
    x, y = _data(60)
    users = np.random.default_rng(1).integers(0, 7, 60)  # users with records in several classes
    full = class_embedding_sums(x, y, 3, users)
    for u in np.unique(users):
        keep = users != u
        moved = np.linalg.norm(full - class_embedding_sums(x[keep], y[keep], 3, users[keep]))
        assert moved <= 1.0 + 1e-12
    one = np.linalg.norm(class_embedding_sums(x[:1], y[:1], 3, users[:1]))
    assert one == pytest.approx(1.0)  # a single-record user is a whole record


def test_a_zero_embedding_adds_nothing_and_a_non_finite_one_is_refused() -> None:
    x, y = _data(5)
    x[2] = 0.0
    assert np.linalg.norm(class_embedding_sums(x[2:3], y[2:3], 3)) == 0.0
    x[3, 1] = np.nan
    with pytest.raises(NonFiniteEmbedding, match="row 3"):
        class_embedding_sums(x, y, 3)


def test_nearest_centroid_is_cosine_to_each_class_sum_whatever_its_size() -> None:
    sums = np.array([[30.0, 1.0], [0.0, 2.0]])  # class 1 small: its direction counts, not its norm
    emb = np.array([[1.0, 0.2], [0.1, 1.0], [5.0, 4.0], [-1.0, 0.0]])
    assert nearest_centroid(emb, sums).tolist() == [0, 1, 0, 1]  # [-1, 0] points away from 0
    assert nearest_centroid(emb, sums * 7.0).tolist() == [0, 1, 0, 1]


def test_ranked_with_two_classes_gives_class_1_the_texts_leaning_most_towards_it() -> None:
    rng = np.random.default_rng(3)
    emb = rng.normal(0.0, 0.05, size=(40, 6)) + [1.0, 0, 0, 0, 0, 0]  # all near class 0's sum
    sums = np.array([[40.0, 0, 0, 0, 0, 0], [30.0, 15.0, 0, 0, 0, 0]])
    cos = (emb / np.linalg.norm(emb, axis=1, keepdims=True)) @ (
        sums / np.linalg.norm(sums, axis=1, keepdims=True)
    ).T
    for size1 in (0, 7, 20, 40):
        got = ranked_centroid(emb, sums, np.array([40 - size1, size1]))
        assert np.bincount(got, minlength=2).tolist() == [40 - size1, size1]
        lean = cos[:, 1] - cos[:, 0]
        assert set(np.flatnonzero(got == 1)) == set(np.argsort(-lean)[:size1])
    # nearest-centroid puts these texts in one class; ranked keeps the sizes asked for
    assert len(set(nearest_centroid(emb, sums).tolist())) == 1


def test_ranked_is_the_best_assignment_under_the_sizes() -> None:
    rng = np.random.default_rng(4)
    emb, sums, sizes = rng.normal(size=(7, 4)), rng.normal(size=(3, 4)), np.array([3, 0, 4])
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    cos = unit @ (sums / np.linalg.norm(sums, axis=1, keepdims=True)).T
    got = ranked_centroid(emb, sums, sizes)
    best = max(
        cos[np.arange(7), list(p)].sum() for p in set(itertools.permutations([0, 0, 0, 2, 2, 2, 2]))
    )
    assert np.bincount(got, minlength=3).tolist() == sizes.tolist()
    assert cos[np.arange(7), got].sum() == pytest.approx(best, abs=1e-12)


def test_ranked_in_blocks_keeps_the_sizes_exactly(monkeypatch) -> None:
    rng = np.random.default_rng(5)
    emb, sums, sizes = rng.normal(size=(50, 4)), rng.normal(size=(3, 4)), np.array([11, 25, 14])
    whole = ranked_centroid(emb, sums, sizes)
    monkeypatch.setattr(centroid_module, "ASSIGN_BLOCK", 8)
    blocked = ranked_centroid(emb, sums, sizes)
    assert np.bincount(blocked, minlength=3).tolist() == sizes.tolist()
    assert (blocked == whole).mean() > 0.6  # blocks of 8 approximate the whole assignment
    with pytest.raises(ValueError, match="summing to the 50 texts"):
        ranked_centroid(emb, sums, np.array([11, 25, 13]))
    with pytest.raises(ValueError, match="each of the 3 classes"):
        ranked_centroid(emb, sums, np.array([25, 25]))


def _s(sid: str, text: str, c: int) -> Sample:
    return Sample(sid, text, c, 0, None, "fake", "random")


def test_relabelled_merges_a_soft_texts_copies_and_sums_their_cells() -> None:
    policy = Soft(least=1.0, n_classes=2, cross=True)
    cast = Voted(
        [_s("a", "text a", 0), _s("b", "text b", 1)],
        np.array([5.0, 3.0, 0.5, 9.0]),
        np.array([0, 1]),
    )
    policy.observe(cast, cast, [])
    soft = policy.result()
    assert sorted(soft.votes) == ["a", "a~1", "b"]
    seen = []

    def label(samples):
        seen.append([s.text for s in samples])
        return np.array([1, 0])

    out = soft.relabelled(label)
    assert seen == [["text a", "text b"]]  # each text labelled once
    assert [(s.id, s.text, s.class_id) for s in out.output] == [
        ("a", "text a", 1),
        ("b", "text b", 0),
    ]
    assert out.votes == {"a": 8.0, "b": 9.0} and out.weighted


def _cfg(tmp_path, **privacy):
    data = write_jsonl(tmp_path / "private.jsonl", private_rows(60))
    return small_config(
        data,
        tmp_path / "run",
        privacy={"centroids": True, **privacy},
        pe={"iterations": 2, "samples": 6, "variations": 2, "output": "soft", "relabel": True},
    )


def test_a_run_books_the_centroids_labels_its_corpus_with_them_and_a_resume_reuses_them(
    tmp_path,
) -> None:
    cfg = _cfg(tmp_path, centroid_labels="nearest")
    emb = HashEmbedder(32)
    result = pipeline.run(cfg, show_progress=False, llm=FakeLLM(), embedder=emb)
    ledger = json.loads((result.run_dir / "ledger.json").read_text())
    events = {e["name"]: e for e in ledger["events"]}
    assert events["centroids"]["kind"] == "centroids"
    delta = ledger["delta"]
    assert events["centroids"]["sigma"] == calibrate_sigma(2.0, delta, 1, share=0.2)
    # The votes were given what the counts and the centroids left, at the run's delta.
    settings = PrivacySettings.from_config(resolved_config(cfg))
    from augpe.privacy.ledger import GaussianRelease

    before = [GaussianRelease(n, events[n]["sigma"], kind=n) for n in ("class_counts", "centroids")]
    assert [events[f"votes_t{t}"]["sigma"] for t in (1, 2)] == [
        v.sigma for v in vote_releases(settings, delta, before)
    ]
    assert ledger["epsilon"] <= 2.0
    # Every text once, under the class of its nearest noisy centroid.
    stored = json.loads((result.run_dir / "state" / "centroids.json").read_text())
    assert (
        stored["tag"] == ["negclass", "posclass"]
        and stored["sigma"] == events["centroids"]["sigma"]
    )
    rows = [json.loads(x) for x in result.corpus_path.read_text().splitlines()]
    assert len({r["text"] for r in rows}) == len(rows) > 0
    want = nearest_centroid(HashEmbedder(32).encode([r["text"] for r in rows]), stored["noisy"])
    assert [r["class"] for r in rows] == [stored["tag"][c] for c in want]
    assert all(r["weight"] > 0 for r in rows)
    # A resume reuses the stored release (never redrawn) and books nothing new.
    pipeline.run(cfg, resume=True, show_progress=False, llm=FakeLLM(), embedder=HashEmbedder(32))
    assert json.loads((result.run_dir / "state" / "centroids.json").read_text()) == stored
    assert json.loads((result.run_dir / "ledger.json").read_text())["events"] == ledger["events"]
    # The noisy centroids are a DP release: they may go with the state into a release folder.
    files = release(result.run_dir, tmp_path / "out", include_state=True)
    assert any(f.name == "centroids.json" for f in files)
    release_dataset(result.run_dir, tmp_path / "dataset")
    card = (tmp_path / "dataset" / "README.md").read_text(encoding="utf-8")
    assert "1 class-centroid release" in card and "DP centroid" in card
    assert "(ranked)" not in card  # this run labelled by the nearest centroid
    assert "each text once, weighted by the noisy votes" in card


def test_a_run_with_ranked_centroid_labels_keeps_the_shares_of_its_class_sizes(tmp_path) -> None:
    data = write_jsonl(tmp_path / "private.jsonl", private_rows(60))
    cfg = small_config(
        data,
        tmp_path / "run",
        privacy={"centroids": True},  # centroid_labels: ranked is the default
        pe={"iterations": 2, "samples": 8, "variations": 2, "output": "every", "relabel": True},
    )
    result = pipeline.run(cfg, show_progress=False, llm=FakeLLM(), embedder=HashEmbedder(32))
    stored = json.loads((result.run_dir / "state" / "centroids.json").read_text())
    target = json.loads((result.run_dir / "summary.json").read_text())["target_samples_per_class"]
    rows = [json.loads(x) for x in result.corpus_path.read_text().splitlines()]
    sizes = shares_of(np.array([target[c] for c in stored["tag"]]), len(rows))
    # the cross-class vote relabelled the texts; the corpus still keeps the run's class shares
    assert [sum(r["class"] == c for r in rows) for c in stored["tag"]] == sizes.tolist()
    want = ranked_centroid(
        HashEmbedder(32).encode([r["text"] for r in rows]), stored["noisy"], sizes
    )
    assert [r["class"] for r in rows] == [stored["tag"][c] for c in want]
    release_dataset(result.run_dir, tmp_path / "dataset")
    card = (tmp_path / "dataset" / "README.md").read_text(encoding="utf-8")
    assert "each class keeping its share of the rows under the run's class sizes (ranked)" in card


def test_shares_split_the_rows_in_proportion_and_sum_to_them() -> None:
    assert shares_of(np.array([24, 24]), 195).tolist() == [98, 97]
    assert shares_of(np.array([32, 16]), 200).tolist() == [133, 67]
    assert shares_of(np.array([5, 0, 5]), 7).tolist() == [4, 0, 3]
    assert shares_of(np.array([0, 0]), 3).tolist() == [2, 1]
    for n in range(12):
        assert shares_of(np.array([3, 1, 7]), n).sum() == n


def test_without_centroids_no_release_is_made_and_the_budget_share_is_a_setting(tmp_path) -> None:
    cfg = _cfg(tmp_path, centroids=False)
    result = pipeline.run(cfg, show_progress=False, llm=FakeLLM(), embedder=HashEmbedder(32))
    kinds = [e["kind"] for e in json.loads((result.run_dir / "ledger.json").read_text())["events"]]
    assert "centroids" not in kinds and not (result.run_dir / "state" / "centroids.json").exists()
    (tmp_path / "c.yaml").write_text("privacy: {centroid_share: 1.5}\n", encoding="utf-8")
    with pytest.raises(Exception, match="centroid_share"):
        load_config(tmp_path / "c.yaml")
