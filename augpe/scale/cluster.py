"""Connecting to Ray: `execution.address` None (start one here), 'auto', or 'ray://host:port'.

If this process is already connected (a Ray job, a test fixture, a notebook that called
`ray.init`), that connection is used as it is. A Ray started here is reused by later runs in the
same process and stopped when the process exits (Ray registers that itself), or by `shutdown()`.
"""

from __future__ import annotations

import logging
from typing import Any

from augpe.config import ExecutionConfig
from augpe.errors import BackendError, missing_dependency

__all__ = ["connect", "import_ray", "shutdown", "wait_ready"]

log = logging.getLogger("augpe")
_started_here = False


def import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise missing_dependency("ray", extra="ray") from err
    return ray


def connect(execution: ExecutionConfig) -> Any:
    """The `ray` module, connected to the cluster `execution` names (started if None)."""
    global _started_here
    ray = import_ray()
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "runtime_env": execution.runtime_env,
        "logging_level": logging.WARNING,
    }
    if execution.address is None:
        kwargs["num_cpus"] = execution.num_cpus_local
    else:
        kwargs["address"] = execution.address
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = execution.address or "a new local Ray"
        raise BackendError(f"execution.address: cannot connect to {where}: {err}") from err
    _started_here = execution.address is None
    log.info(
        "ray: connected to %s (%s)", execution.address or "a local Ray", ray.cluster_resources()
    )
    return ray


def shutdown() -> None:
    """Stop the Ray this module started (a cluster it only connected to keeps running)."""
    global _started_here
    ray = import_ray()
    if ray.is_initialized():
        ray.shutdown()
    _started_here = False


def wait_ready(ray: Any, refs: list[Any], what: str, asked: str, timeout: float) -> list[Any]:
    """`ray.get(refs)`, or a BackendError naming the resources asked when they cannot be placed."""
    _, pending = ray.wait(refs, num_returns=len(refs), timeout=timeout)
    if pending:
        raise BackendError(
            f"{what}: {len(pending)} of {len(refs)} could not start within {timeout:.0f} s; each asks "
            f"for {asked}, the cluster has {ray.cluster_resources()} "
            f"({ray.available_resources()} free). Lower the per-actor resources or add nodes."
        )
    return list(ray.get(refs))  # in the order asked
