"""The sharded vote on a real Ray cluster (head + a worker node) equals the local vote exactly."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from fakes.ray_cluster import local_ray_cluster

from augpe.config import ExecutionConfig
from augpe.privacy.vote import VoteTally, vote_histogram

pytestmark = pytest.mark.ray

ray_vote = pytest.importorskip("augpe.scale.ray_vote")


@pytest.fixture(scope="module")
def cluster():
    with local_ray_cluster(nodes=2) as c:
        yield c


def _data(seed=0, n=900, m=150, d=24, classes=3, users=41):
    rng = np.random.default_rng(seed)
    priv = rng.standard_normal((n, d)).astype(np.float32)
    syn = rng.standard_normal((m, d)).astype(np.float32)
    syn[5:9] = syn[2]  # duplicates: ties only the id breaks
    priv[:30] = syn[2] + np.float32(1e-3) * rng.standard_normal((30, d)).astype(np.float32)
    return (
        priv,
        rng.integers(classes, size=n),
        syn,
        rng.integers(classes, size=m),
        rng.integers(users, size=n),
    )


EXEC = ExecutionConfig(engine="ray", vote_shards=3, vote_num_cpus=0)


@pytest.fixture(scope="module")
def votes(cluster):
    priv, pc, syn, sc, users = _data()
    out = {
        "record": ray_vote.ShardedVote(priv, pc, None, EXEC),
        "user": ray_vote.ShardedVote(priv, pc, users, EXEC),
    }
    yield out, (priv, pc, syn, sc, users)
    for v in out.values():
        v.close()


@pytest.mark.parametrize("level", ["record", "user"])
@pytest.mark.parametrize("distance", ["cosine", "l2"])
@pytest.mark.parametrize("k", [1, 4])
def test_sharded_vote_equals_the_local_vote_bit_for_bit(votes, level, distance, k):
    sharded, (priv, pc, syn, sc, users) = votes
    uid = users if level == "user" else None
    local = vote_histogram(priv, pc, syn, sc, k, distance, uid)
    got = sharded[level].histogram(syn, sc, k, distance, chunk=64, device="auto")
    assert got.tobytes() == local.tobytes()
    assert local.sum() > 0


def test_shards_sit_on_both_nodes_and_hold_whole_users(votes):
    sharded, (priv, _, _, _, users) = votes
    info = sharded["user"].info()
    assert sum(i["rows"] for i in info) == len(priv)
    rows = sharded["user"].rows
    owners = [{int(u) for u in users[r]} for r in rows]
    for a in range(len(owners)):
        for b in range(a + 1, len(owners)):
            assert not owners[a] & owners[b]  # a user's records are in one shard only
    assert len({i["node"] for i in info}) == 2  # SPREAD: the 3 shards use both nodes


def test_a_large_population_comes_back_in_inline_sized_pieces(cluster):
    # 5000 bins x 4 limbs x 8 bytes = 160 KB: more than Ray's 100 KiB inline limit as one object.
    priv, pc, syn, sc, _ = _data(seed=3, n=400, m=5000, d=8)
    parts = int(np.ceil(5000 * VoteTally.LIMBS * 8 / ray_vote.INLINE_BYTES))
    assert parts >= 3 and np.array_split(np.zeros((5000, 4), np.int64), parts)[0].nbytes <= (
        ray_vote.INLINE_BYTES
    )
    sv = ray_vote.ShardedVote(priv, pc, None, ExecutionConfig(vote_shards=2))
    try:
        got = sv.histogram(syn, sc, 2, "cosine")
    finally:
        sv.close()
    assert got.tobytes() == vote_histogram(priv, pc, syn, sc, 2, "cosine").tobytes()


def test_a_vote_shard_killed_between_votes_is_rebuilt_and_the_vote_is_unchanged(cluster):
    priv, pc, syn, sc, _ = _data(seed=5)
    sv = ray_vote.ShardedVote(priv, pc, None, ExecutionConfig(vote_shards=2))
    try:
        want = vote_histogram(priv, pc, syn, sc, 1, "cosine")
        assert sv.histogram(syn, sc, 1, "cosine").tobytes() == want.tobytes()
        os.kill(sv.info()[1]["pid"], signal.SIGKILL)
        time.sleep(0.5)
        assert sv.histogram(syn, sc, 1, "cosine").tobytes() == want.tobytes()
    finally:
        sv.close()


def test_shard_rows_split_records_evenly_and_users_whole():
    parts = ray_vote.shard_rows(10, 3)
    assert [p.tolist() for p in parts] == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]
    users = np.array([3, 1, 1, 2, 3, 3, 0, 2, 1, 1])
    parts = ray_vote.shard_rows(10, 2, users)
    assert sorted(np.concatenate(parts).tolist()) == list(range(10))
    assert not {int(u) for u in users[parts[0]]} & {int(u) for u in users[parts[1]]}
    assert all(p.size for p in parts)
    assert len(ray_vote.shard_rows(2, 5)) == 2
