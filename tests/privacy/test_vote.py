"""The vote is the only place private data meets synthetic data: its sensitivity must be 1."""

import numpy as np
import pytest

from augpe.privacy.vote import vote_histogram


def _data(rng, n_priv=60, n_syn=30, dim=16, classes=3):
    priv = rng.normal(size=(n_priv, dim)).astype(np.float32)
    syn = rng.normal(size=(n_syn, dim)).astype(np.float32)
    return priv, rng.integers(0, classes, n_priv), syn, np.arange(n_syn) % classes


@pytest.mark.parametrize("k", [1, 3, 4])
@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_removing_one_record_changes_clean_histogram_by_at_most_l2_1(k, distance):
    rng = np.random.default_rng(0)
    priv, pc, syn, sc = _data(rng)
    full = vote_histogram(priv, pc, syn, sc, k=k, distance=distance)
    for i in range(0, len(priv), 7):
        keep = np.arange(len(priv)) != i
        without = vote_histogram(priv[keep], pc[keep], syn, sc, k=k, distance=distance)
        change = np.linalg.norm(full - without)
        assert change == pytest.approx(1.0, abs=1e-9)  # exactly 1: k distinct bins of 1/sqrt(k)


def test_total_votes_equal_records_times_sqrt_k():
    rng = np.random.default_rng(1)
    priv, pc, syn, sc = _data(rng)
    hist = vote_histogram(priv, pc, syn, sc, k=4)
    assert hist.sum() == pytest.approx(len(priv) * 4 / np.sqrt(4))


def test_records_only_vote_for_synthetic_samples_of_their_own_class():
    rng = np.random.default_rng(2)
    priv, _, syn, sc = _data(rng)
    pc = np.zeros(len(priv), dtype=np.int64)  # every record is class 0
    hist = vote_histogram(priv, pc, syn, sc, k=2)
    assert hist[sc != 0].sum() == 0
    assert hist[sc == 0].sum() > 0


def test_nearest_sample_gets_the_vote():
    syn = np.array([[1, 0], [0, 1], [-1, 0]], dtype=np.float32)
    priv = np.array([[0.9, 0.1], [0.1, 0.95], [0.2, 0.9]], dtype=np.float32)
    hist = vote_histogram(priv, np.zeros(3, dtype=np.int64), syn, np.zeros(3, dtype=np.int64), k=1)
    assert hist.tolist() == [1.0, 2.0, 0.0]


def test_chunked_search_equals_one_shot():
    rng = np.random.default_rng(3)
    priv, pc, syn, sc = _data(rng, n_priv=200)
    a = vote_histogram(priv, pc, syn, sc, k=2, chunk=7)
    b = vote_histogram(priv, pc, syn, sc, k=2, chunk=10_000)
    np.testing.assert_allclose(a, b)


def test_class_with_fewer_candidates_than_k_still_has_sensitivity_at_most_1():
    rng = np.random.default_rng(4)
    priv, pc, syn, sc = _data(rng, n_syn=6, classes=3)  # 2 synthetic samples per class, k=3
    full = vote_histogram(priv, pc, syn, sc, k=3)
    without = vote_histogram(priv[1:], pc[1:], syn, sc, k=3)
    assert np.linalg.norm(full - without) <= 1.0


def test_class_with_no_synthetic_samples_casts_no_votes():
    rng = np.random.default_rng(6)
    priv, pc, syn, sc = _data(rng, n_syn=6, classes=3)
    keep = sc != 2
    hist = vote_histogram(priv, pc, syn[keep], sc[keep], k=1)
    assert hist.sum() == pytest.approx(np.sum(pc != 2))


def test_knn_search_refuses_k_above_the_population():
    from augpe.embed.knn import knn_search

    with pytest.raises(ValueError, match="k=3 exceeds"):
        list(knn_search(np.zeros((2, 4), np.float32), np.ones((2, 4), np.float32), 3, "l2"))


def test_user_level_votes_have_norm_one_per_user():
    rng = np.random.default_rng(5)
    priv, pc, syn, sc = _data(rng, n_priv=40)
    users = np.repeat(np.arange(8), 5)  # 8 users x 5 records
    full = vote_histogram(priv, pc, syn, sc, k=2, user_ids=users)
    for u in range(8):
        keep = users != u
        without = vote_histogram(priv[keep], pc[keep], syn, sc, k=2, user_ids=users[keep])
        assert np.linalg.norm(full - without) <= 1.0 + 1e-9


def test_nan_private_embedding_is_refused_not_voted_with_id_minus_one():
    # Before the fix, faiss answered id -1 for a NaN row; syn_idx[-1] repeated the last bin k times
    # and that record's vote vector had norm sqrt(k) instead of 1.
    from augpe.embed.knn import NonFiniteEmbedding

    rng = np.random.default_rng(5)
    priv, pc, syn, sc = _data(rng)
    priv[4, 0] = np.nan
    with pytest.raises(NonFiniteEmbedding, match="private embeddings: 1 embedding row.*row 4"):
        vote_histogram(priv, pc, syn, sc, k=3)


def test_inf_synthetic_embedding_is_refused():
    from augpe.embed.knn import NonFiniteEmbedding

    rng = np.random.default_rng(6)
    priv, pc, syn, sc = _data(rng)
    syn[2, 3] = np.inf
    with pytest.raises(NonFiniteEmbedding, match="synthetic embeddings"):
        vote_histogram(priv, pc, syn, sc, k=1, distance="l2")


def test_faiss_ids_are_checked_in_range_and_distinct():
    from augpe.embed.knn import _valid_ids

    ok = np.array([[0, 2, 1], [3, 1, 0]])
    assert _valid_ids(ok, 4) is ok
    with pytest.raises(RuntimeError, match="outside"):
        _valid_ids(np.array([[0, -1, 2]]), 4)
    with pytest.raises(RuntimeError, match="twice"):
        _valid_ids(np.array([[1, 1, 2]]), 4)
