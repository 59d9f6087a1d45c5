"""The sensitivity the noise is calibrated for: removing one record (record-level) or one user,
however many records that user has (user-level), moves the clean vote histogram by L2 <= 1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest
from fakes.pe import FakeLLM, HashEmbedder, private_rows, public_pool, small_config, write_jsonl

from augpe.privacy.vote import class_histogram, vote_histogram
from augpe.records.data import load_private_data
from augpe.runner.compose import run

TOL = 1e-9


@pytest.fixture(autouse=True, scope="module")
def _one_faiss_thread() -> Iterator[None]:
    """Hundreds of tiny searches: OpenMP start-up would dominate (and fight a busy machine)."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def _setup(seed: int = 0, n: int = 300, n_syn: int = 40, dim: int = 16):
    rng = np.random.default_rng(seed)
    private = rng.normal(size=(n, dim)).astype(np.float32)
    classes = rng.integers(0, 2, n)
    synthetic = rng.normal(size=(n_syn, dim)).astype(np.float32)
    syn_classes = np.arange(n_syn) % 2
    # User 0 wrote 80 records, all close to one synthetic sample (the worst case: its votes pile
    # up in one bin); the other records belong to users with 1-4 records each.
    heavy = np.arange(80)
    private[heavy] = synthetic[0] + 0.01 * rng.normal(size=(80, dim))
    classes[heavy] = syn_classes[0]
    users = np.concatenate([np.zeros(80, dtype=np.int64), 1 + rng.integers(0, 70, n - 80)])
    # User 1 also writes in both classes.
    classes[users == 1] = np.arange(int((users == 1).sum())) % 2
    return private, classes, synthetic, syn_classes, users


def _hist(private, classes, synthetic, syn_classes, keep, k, users=None):
    return vote_histogram(
        private[keep],
        classes[keep],
        synthetic,
        syn_classes,
        k=k,
        user_ids=None if users is None else users[keep],
    )


@pytest.mark.parametrize("k", [1, 3])
def test_removing_any_user_moves_the_histogram_by_at_most_one(k: int) -> None:
    private, classes, synthetic, syn_classes, users = _setup()
    everyone = np.ones(len(private), dtype=bool)
    full = _hist(private, classes, synthetic, syn_classes, everyone, k, users)
    for u in np.unique(users):
        without = _hist(private, classes, synthetic, syn_classes, users != u, k, users)
        assert np.linalg.norm(full - without) <= 1.0 + TOL, f"user {u}"
    # Each user's vector has norm exactly 1 (not less): the noise is not over-calibrated either.
    heavy_gone = _hist(private, classes, synthetic, syn_classes, users != 0, k, users)
    assert np.linalg.norm(full - heavy_gone) == pytest.approx(1.0, abs=1e-9)


def test_without_user_normalisation_the_heavy_user_would_move_it_far_more() -> None:
    """The contrast that makes the test above mean something: record-level votes of the user
    with 80 records sum to a vector of norm ~80."""
    private, classes, synthetic, syn_classes, users = _setup()
    everyone = np.ones(len(private), dtype=bool)
    full = _hist(private, classes, synthetic, syn_classes, everyone, 1)
    without = _hist(private, classes, synthetic, syn_classes, users != 0, 1)
    assert np.linalg.norm(full - without) > 50


@pytest.mark.parametrize("k", [1, 2, 5])
def test_removing_any_record_moves_the_histogram_by_at_most_one(k: int) -> None:
    private, classes, synthetic, syn_classes, _ = _setup(seed=1, n=120)
    everyone = np.ones(len(private), dtype=bool)
    full = _hist(private, classes, synthetic, syn_classes, everyone, k)
    for i in range(len(private)):
        keep = everyone.copy()
        keep[i] = False
        diff = np.linalg.norm(full - _hist(private, classes, synthetic, syn_classes, keep, k))
        assert diff == pytest.approx(1.0, abs=TOL)  # 1/sqrt(k) to each of k distinct bins


def test_a_user_column_makes_the_ledger_user_level(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", private_rows(60, users=7))
    cfg = small_config(data, tmp_path / "run", 2.0, user_column="user")
    result = run(cfg, show_progress=False, llm=FakeLLM(public_pool(20)), embedder=HashEmbedder(32))
    assert result.ledger.neighbouring == "add/remove one user"
    record_level = small_config(data, tmp_path / "run2", 2.0)
    result2 = run(
        record_level, show_progress=False, llm=FakeLLM(public_pool(20)), embedder=HashEmbedder(32)
    )
    assert result2.ledger.neighbouring == "add/remove one record"


def test_user_level_class_counts_move_by_at_most_one(tmp_path: Path) -> None:
    rows = private_rows(60, users=20)
    rows += [
        {"text": f"heavy user review number {i} of many", "label": "posclass", "user": "heavy"}
        for i in range(30)
    ]
    with_heavy = write_jsonl(tmp_path / "all.jsonl", rows)
    without = write_jsonl(tmp_path / "rest.jsonl", [r for r in rows if r["user"] != "heavy"])
    clean = []
    for i, path in enumerate((with_heavy, without)):
        cfg = small_config(path, tmp_path / f"run{i}", 2.0, user_column="user")
        data = load_private_data(cfg.data)
        # The clean vector the class_counts release noises: its sensitivity is what shows.
        clean.append(class_histogram(data.class_ids, data.num_classes, data.user_ids))
    assert np.linalg.norm(clean[0] - clean[1]) <= 1.0 + TOL
