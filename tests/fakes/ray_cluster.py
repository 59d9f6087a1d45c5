"""A real multi-node Ray cluster on this machine: a head and extra worker-node processes.

`ray.cluster_utils.Cluster` starts each node as its own raylet + object store (separate
processes, as on separate machines); the driver connects to the head, so actors placed with the
SPREAD strategy land on different nodes. Kept small (1 CPU per node, 128 MiB object stores) so
the tests fit a shared 2-core machine. Tests that use it are marked `ray`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

STORE = 128 * 2**20


@contextmanager
def local_ray_cluster(nodes: int = 2, num_cpus: float = 1) -> Iterator[object]:
    ray = pytest.importorskip("ray", reason="pip install 'augpe[ray]'")
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Worker processes inherit the environment of the node processes started here: with the
    # tests folder on their path they can import the fakes a test hands to a replica.
    tests_dir = str(Path(__file__).resolve().parent.parent)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if tests_dir not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([tests_dir, *paths])
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": num_cpus,
            "object_store_memory": STORE,
            "include_dashboard": False,
        },
    )
    try:
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=num_cpus, object_store_memory=STORE)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="WARNING")
        _until_every_node_takes_work(ray)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def _until_every_node_takes_work(ray: Any) -> None:
    """Block until a task pinned (hard) to each node has run there.

    `wait_for_nodes` only says the GCS knows the nodes; the head's raylet learns a new node's
    resources a moment later (slower on a loaded 2-core machine). Until then a *soft* node
    affinity to that node falls back to the head, so a test of where shards land would race.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_cpus=0)
    def _where() -> str:
        return ray.get_runtime_context().get_node_id()

    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
    refs = [
        _where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
        for n in nodes
    ]
    assert ray.get(refs, timeout=120) == nodes
