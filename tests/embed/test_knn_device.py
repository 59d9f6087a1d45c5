"""The vote's k-NN search gives the same ids on every device and in every batch, and the vote
tally of any split of the records sums to the whole, bit for bit (what Ray shards rely on)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from augpe.config import parse_config
from augpe.embed import knn as vote
from augpe.embed import knn_device as scale_knn
from augpe.embed.knn import knn_search
from augpe.errors import ConfigError
from augpe.privacy.vote import VoteTally, vote_histogram, vote_tally


def _reference_knn(q, base, k, distance):
    """float64 brute force, ties to the lower id: the ranking knn_search promises."""
    q64, b64 = q.astype(np.float64), base.astype(np.float64)
    if distance == "cosine":
        qn = np.sqrt((q64 * q64).sum(1))
        bn = np.sqrt((b64 * b64).sum(1))
        score = (q64 @ b64.T) / (qn[:, None] * bn[None, :])
    else:
        score = -(((q64[:, None, :] - b64[None, :, :]) ** 2).sum(-1))
    ids = np.broadcast_to(np.arange(base.shape[0]), score.shape)
    order = np.lexsort((ids, -score), axis=-1)
    return order[:, :k]


def _tricky(rng, n_base=300, n_q=400, d=32):
    """Random rows plus exact duplicates and float32-level near-duplicates of base rows, and
    queries sitting right next to some of them: the cases where float32 engines disagree."""
    base = rng.standard_normal((n_base, d)).astype(np.float32)
    base[10:16] = base[3]  # six exact duplicates of row 3 (ties only the id can break)
    base[20] = base[7] + np.float32(1e-7) * rng.standard_normal(d).astype(np.float32)
    base[21] = base[7] * np.float32(1 + 1e-7)
    q = rng.standard_normal((n_q, d)).astype(np.float32)
    q[:40] = base[3] + np.float32(1e-3) * rng.standard_normal((40, d)).astype(np.float32)
    q[40:80] = base[7] + np.float32(1e-4) * rng.standard_normal((40, d)).astype(np.float32)
    return q, base


@pytest.mark.parametrize("distance", ["cosine", "l2"])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_knn_ids_are_the_float64_ranking_even_with_duplicates_and_near_ties(distance, k):
    q, base = _tricky(np.random.default_rng(k))
    got = np.concatenate([ids for _, ids in knn_search(q, base, k, distance, chunk=128)])
    np.testing.assert_array_equal(got, _reference_knn(q, base, k, distance))


@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_knn_ids_do_not_depend_on_the_batch_a_row_is_searched_in(distance):
    # faiss takes a BLAS path for >= 20 queries and a direct one below: a shard of 3 rows and a
    # chunk of 400 must still agree.
    q, base = _tricky(np.random.default_rng(11))
    whole = np.concatenate([ids for _, ids in knn_search(q, base, 4, distance)])
    ones = np.concatenate([ids for _, ids in knn_search(q, base, 4, distance, chunk=1)])
    rows = np.array([5, 41, 399])
    picked = np.concatenate([ids for _, ids in knn_search(q, base, 4, distance, rows=rows)])
    np.testing.assert_array_equal(whole, ones)
    np.testing.assert_array_equal(picked, whole[rows])


@pytest.mark.parametrize("distance", ["cosine", "l2"])
@pytest.mark.parametrize("k", [1, 5])
def test_torch_engine_gives_exactly_the_faiss_ids(monkeypatch, distance, k):
    # The CUDA path's code (tiled matmul + topk) run on the CPU: after the float64 ranking its
    # ids equal faiss's exactly, duplicates included.
    q, base = _tricky(np.random.default_rng(20 + k))
    cpu = np.concatenate([ids for _, ids in knn_search(q, base, k, distance)])
    monkeypatch.setattr(
        vote, "_engine", lambda b, dist, dev: scale_knn.torch_candidates(b, dist, "cpu", 4096)
    )
    torch_ids = np.concatenate([ids for _, ids in knn_search(q, base, k, distance, device="x")])
    np.testing.assert_array_equal(torch_ids, cpu)


def test_a_minus_one_from_any_engine_is_refused(monkeypatch):
    q, base = _tricky(np.random.default_rng(3))
    monkeypatch.setattr(
        vote,
        "_engine",
        lambda b, dist, dev: lambda x, kk: (np.ones((len(x), kk)), -np.ones((len(x), kk))),
    )
    with pytest.raises(RuntimeError, match="outside"):
        list(knn_search(q, base, 1, "cosine", device="cuda"))


def test_non_finite_base_is_refused_on_every_device():
    q, base = _tricky(np.random.default_rng(4))
    base[5, 0] = np.nan
    for device in ("cpu", "cuda"):  # refused before any engine (or GPU) is touched
        with pytest.raises(vote.NonFiniteEmbedding):
            list(knn_search(q, base, 1, "cosine", device=device))


def test_auto_is_cpu_without_a_gpu_and_cuda_without_one_is_an_error(monkeypatch):
    monkeypatch.setattr(scale_knn, "cuda_available", lambda: False)
    assert scale_knn.resolve_device("auto") == "cpu"
    assert scale_knn.resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="no CUDA GPU"):
        scale_knn.resolve_device("cuda")
    with pytest.raises(ConfigError, match="pe.knn_device"):
        scale_knn.knn_device_setting("cuda")
    monkeypatch.setattr(scale_knn, "cuda_available", lambda: True)
    assert scale_knn.resolve_device("auto") == "cuda"


def test_knn_device_defaults_to_auto_and_validates():
    assert parse_config({"data": {"path": "x"}}).pe.knn_device == "auto"
    with pytest.raises(ConfigError, match="pe.knn_device"):
        parse_config({"data": {"path": "x"}, "pe": {"knn_device": "tpu"}})


def test_on_this_machine_auto_resolves_to_what_torch_sees():
    import torch

    assert scale_knn.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


# ---- exact tallies ------------------------------------------------------------------------------
def _data(rng, n=500, m=60, d=16, classes=3):
    priv = rng.standard_normal((n, d)).astype(np.float32)
    syn = rng.standard_normal((m, d)).astype(np.float32)
    return priv, rng.integers(classes, size=n), syn, rng.integers(classes, size=m)


@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_tallies_of_any_split_of_the_records_sum_to_the_whole_bit_for_bit(k, distance):
    rng = np.random.default_rng(k)
    priv, pc, syn, sc = _data(rng)
    whole = vote_histogram(priv, pc, syn, sc, k, distance)
    cuts = [0, 1, 77, 78, 300, 500]
    parts = [
        vote_tally(priv[a:b], pc[a:b], syn, sc, k, distance) for a, b in itertools.pairwise(cuts)
    ]
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    assert total.histogram().tobytes() == whole.tobytes()


@pytest.mark.parametrize("k", [1, 4])
def test_user_level_tallies_of_whole_users_sum_to_the_whole_bit_for_bit(k):
    rng = np.random.default_rng(40 + k)
    priv, pc, syn, sc = _data(rng)
    users = rng.integers(37, size=len(priv))
    whole = vote_histogram(priv, pc, syn, sc, k, "cosine", user_ids=users)
    total = VoteTally.zeros(len(syn))
    for group in (users % 3 == 0, users % 3 == 1, users % 3 == 2):  # whole users, interleaved
        total = total + vote_tally(priv[group], pc[group], syn, sc, k, "cosine", users[group])
    assert total.histogram().tobytes() == whole.tobytes()


def test_histogram_is_the_correctly_rounded_sum_of_the_contributions():
    rng = np.random.default_rng(9)
    bins = rng.integers(20, size=5000)
    values = rng.random(5000) ** 3 + 1e-9  # spread over many binades
    hist = VoteTally.of_values(bins, values, 20).histogram()
    for b in range(20):
        assert hist[b] == math.fsum(values[bins == b])  # fsum is correctly rounded
    w = 1 / math.sqrt(3)
    counts = np.array([0, 1, 2, 3, 1_000_003])
    np.testing.assert_array_equal(
        VoteTally.of_counts(counts, w).histogram(), [math.fsum([w] * int(c)) for c in counts]
    )


def test_k1_histogram_is_integer_counts_and_a_tally_refuses_out_of_range_values():
    rng = np.random.default_rng(2)
    priv, pc, syn, sc = _data(rng)
    h = vote_histogram(priv, pc, syn, sc, 1)
    assert h.sum() == len(priv) and np.array_equal(h, np.round(h))
    with pytest.raises(ValueError, match="contributions"):
        VoteTally.of_values(np.array([0]), np.array([-0.5]), 1)
    with pytest.raises(ValueError, match="different populations"):
        VoteTally.zeros(3) + VoteTally.zeros(4)


@pytest.mark.gpu
@pytest.mark.parametrize("distance", ["cosine", "l2"])
def test_cuda_search_and_vote_equal_the_cpu_ones_exactly(distance):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    rng = np.random.default_rng(0)
    q, base = _tricky(rng, n_base=5000, n_q=20000, d=384)
    for k in (1, 4):
        cpu = np.concatenate([ids for _, ids in knn_search(q, base, k, distance, device="cpu")])
        gpu = np.concatenate([ids for _, ids in knn_search(q, base, k, distance, device="cuda")])
        np.testing.assert_array_equal(gpu, cpu)
    classes = rng.integers(4, size=len(q))
    syn_classes = rng.integers(4, size=len(base))
    h_cpu = vote_histogram(q, classes, base, syn_classes, 4, distance, device="cpu")
    h_gpu = vote_histogram(q, classes, base, syn_classes, 4, distance, device="cuda")
    assert h_gpu.tobytes() == h_cpu.tobytes()
