"""The vote on Ray: private embeddings held in shards, each returning its exact partial tally.

Each shard actor holds a slice of the private embeddings (record level: a contiguous range of
records; user level: whole users, so that a user's norm-1 rescaling sees all of their votes) in
its own memory. Per iteration the driver puts the synthetic embeddings in the object store once,
every shard runs `augpe.privacy.vote.vote_tally` on its rows, and the driver adds the tallies. A tally is
exact fixed point (integer limbs), so the sum is bit for bit the local `vote_histogram`, for any
number of shards; the search itself ranks in float64 and does not depend on how rows are split.

Privacy:
- the clean partial tallies exist only in memory: a shard returns its tally in pieces of at most
  64 KiB, which Ray hands back inline in the task reply (objects under 100 KiB never enter the
  shared-memory object store, so they are never spilled to disk), and the driver's sum goes to the
  pipeline's vote function and from there only to the noise. Nothing here writes or logs them.
- the private embeddings travel once, driver -> shard, through the object store (shared memory;
  Ray spills it to its local temp folder only when the store is full: keep the store larger than
  the private embeddings, or set Ray's object spilling off on a cluster that must never spill);
  the shard copies them out, so the store copy is freed, and they never enter the run folder.
- no noise is added here: the pipeline's privacy code adds it once, to the summed histogram.
"""

from __future__ import annotations

import logging
import math
import os
import weakref
from typing import Any

import numpy as np

from augpe.config import Config, ExecutionConfig
from augpe.privacy.vote import VoteTally, vote_tally
from augpe.scale.cluster import connect, wait_ready

__all__ = ["INLINE_BYTES", "ShardedVote", "shard_rows", "sharded_vote"]

log = logging.getLogger("augpe")

INLINE_BYTES = 64 * 1024  # a returned piece stays under Ray's 100 KiB inline limit
READY_TIMEOUT = 300.0


def shard_rows(n: int, shards: int, user_ids: np.ndarray | None = None) -> list[np.ndarray]:
    """Row indices of each shard: contiguous ranges, or whole users (balanced by record count)."""
    shards = max(1, min(shards, n)) if n else 1
    if user_ids is None:
        bounds = np.linspace(0, n, shards + 1).round().astype(np.int64)
        return [np.arange(bounds[s], bounds[s + 1]) for s in range(shards)]
    users = np.asarray(user_ids)
    uniq, inv, counts = np.unique(users, return_inverse=True, return_counts=True)
    # users in id order, cut where the running record count crosses each 1/shards of the total
    cut = np.searchsorted(np.cumsum(counts), np.linspace(0, n, shards + 1)[1:-1], side="left")
    shard_of_user = np.searchsorted(cut, np.arange(uniq.size), side="right")
    return [np.flatnonzero(shard_of_user[inv] == s) for s in range(shards)]


class _Shard:
    """The actor body: one slice of the private embeddings, kept in this process's memory."""

    def __init__(
        self,
        emb: np.ndarray,
        classes: np.ndarray,
        users: np.ndarray | None,
        threads: int | None = None,
    ) -> None:
        if threads:  # the CPUs this shard reserved; otherwise faiss uses every core of its node
            import faiss

            faiss.omp_set_num_threads(threads)
        # Copies: the arguments are read-only views of the object store; copying frees it.
        self.emb = np.array(emb, dtype=np.float32, copy=True)
        self.classes = np.array(classes, copy=True)
        self.users = None if users is None else np.array(users, copy=True)

    def info(self) -> dict[str, Any]:
        import resource

        import ray

        return {
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
            "rows": int(self.emb.shape[0]),
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        }

    def tally(
        self,
        synthetic: tuple[np.ndarray, np.ndarray],
        k: int,
        distance: str,
        chunk: int,
        device: str,
        label_bins: int,
        parts: int,
    ) -> Any:
        from augpe.embed.knn_device import knn_device_setting

        syn_emb, syn_class = synthetic
        t = vote_tally(
            self.emb,
            self.classes,
            syn_emb,
            syn_class,
            k,
            distance,  # type: ignore[arg-type]
            self.users,
            chunk,
            knn_device_setting(device),  # 'auto': this shard's GPU if it reserved one
            label_bins,
        )
        pieces = tuple(np.array_split(t.limbs, parts))
        return pieces if parts > 1 else pieces[0]


class ShardedVote:
    """Private embeddings in `execution.vote_shards` actors; `histogram()` = the local vote."""

    def __init__(
        self,
        private_emb: np.ndarray,
        private_class: np.ndarray,
        user_ids: np.ndarray | None,
        execution: ExecutionConfig,
    ) -> None:
        ray = connect(execution)
        self._ray = ray
        self.execution = execution
        self._emb, self._class, self._users = private_emb, private_class, user_ids
        n = int(private_emb.shape[0])
        self.rows = shard_rows(n, execution.vote_shards or execution.replicas, user_ids)
        self._actor = ray.remote(_Shard)
        # Round-robin over the alive nodes.
        # SPREAD alone does not spread actors that reserve no CPU, and the point of sharding is
        # to spread the private embeddings' memory and the search over the machines.
        self._nodes = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))
        self._shards = [self._spawn(s) for s in range(len(self.rows))]
        wait_ready(
            ray,
            [sh.info.remote() for sh in self._shards],
            f"execution.vote_shards={len(self.rows)}",
            f"num_cpus={execution.vote_num_cpus:g}, num_gpus={execution.vote_num_gpus:g}",
            READY_TIMEOUT,
        )

    def _spawn(self, s: int) -> Any:
        idx = self.rows[s]
        contiguous = idx.size == 0 or idx[-1] - idx[0] + 1 == idx.size
        sl = slice(int(idx[0]), int(idx[-1]) + 1) if contiguous and idx.size else idx
        users = None if self._users is None else self._users[sl]
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # A shard that reserves nothing fits any alive node: pin it there (a soft affinity can
        # fall back to the driver's node while the raylets still exchange resource views). One
        # that reserves CPUs or GPUs may land elsewhere if its node lacks them.
        reserves = self.execution.vote_num_cpus > 0 or self.execution.vote_num_gpus > 0
        where = NodeAffinitySchedulingStrategy(self._nodes[s % len(self._nodes)], soft=reserves)
        # ray.put of a slice view sends it without another copy on the driver
        return self._actor.options(
            num_cpus=self.execution.vote_num_cpus,
            num_gpus=self.execution.vote_num_gpus,
            max_restarts=0,  # a lost shard is rebuilt from the driver's copy (see _get)
            scheduling_strategy=where,
        ).remote(
            self._ray.put(self._emb[sl]),
            self._ray.put(self._class[sl]),
            users,
            int(self.execution.vote_num_cpus) or None,
        )

    def tally(
        self,
        synthetic_emb: np.ndarray,
        synthetic_class: np.ndarray,
        k: int,
        distance: str,
        chunk: int = 65536,
        device: str = "auto",
        label_bins: int = 0,
    ) -> VoteTally:
        """The exact sum of every shard's tally (clean: for the noise only)."""
        ray = self._ray
        n_bins = int(synthetic_emb.shape[0]) * max(label_bins, 1)
        parts = max(1, math.ceil(n_bins * VoteTally.LIMBS * 8 / INLINE_BYTES))
        synthetic = ray.put(
            (np.ascontiguousarray(synthetic_emb, dtype=np.float32), np.asarray(synthetic_class))
        )
        args = (synthetic, k, distance, chunk, device, label_bins, parts)
        refs = [sh.tally.options(num_returns=parts).remote(*args) for sh in self._shards]
        total = VoteTally.zeros(n_bins)
        for s, shard_refs in enumerate(refs):
            pieces = self._get(s, shard_refs, args)
            total = total + VoteTally(np.concatenate(pieces if parts > 1 else [pieces]))
            del pieces
        return total

    def _get(self, s: int, refs: Any, args: tuple[Any, ...]) -> Any:
        """One shard's pieces; a shard lost to a dead process is rebuilt once and asked again."""
        ray = self._ray
        try:
            return ray.get(refs)
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as err:
            log.warning("ray: vote shard %d died (%s); rebuilding it", s, type(err).__name__)
            self._shards[s] = self._spawn(s)
            return ray.get(self._shards[s].tally.options(num_returns=args[-1]).remote(*args))

    def histogram(
        self,
        synthetic_emb: np.ndarray,
        synthetic_class: np.ndarray,
        k: int,
        distance: str,
        chunk: int = 65536,
        device: str = "auto",
        label_bins: int = 0,
    ) -> np.ndarray:
        """The clean vote histogram, equal bit for bit to `augpe.privacy.vote.vote_histogram`."""
        return self.tally(
            synthetic_emb, synthetic_class, k, distance, chunk, device, label_bins
        ).histogram()

    def info(self) -> list[dict[str, Any]]:
        return list(self._ray.get([sh.info.remote() for sh in self._shards]))

    def close(self) -> None:
        for sh in self._shards:
            try:
                self._ray.kill(sh)
            except Exception as err:  # noqa: BLE001 - already gone
                log.debug("ray: vote shard already gone (%s)", type(err).__name__)
        self._shards = []


_BY_RUN: weakref.WeakKeyDictionary[Any, ShardedVote] = weakref.WeakKeyDictionary()


def sharded_vote(cfg: Config, private: Any, data: Any) -> ShardedVote:
    """The ShardedVote of one run, built on its first vote (keyed on the run's PrivateEmbeddings,
    so it lives as long as the run does: the shards go when the run's objects do)."""
    vote = _BY_RUN.get(private)
    if vote is None:
        vote = ShardedVote(private.get(), data.class_ids, data.user_ids, cfg.execution)
        _BY_RUN[private] = vote
        weakref.finalize(private, vote.close)
    return vote
