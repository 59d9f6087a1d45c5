"""RayLLM: the configured backend in N Ray actors, behind the same LLM Protocol.

The driver splits each `generate` call into small batches and keeps every replica busy (two
batches queued per replica, so none idles between batches). Each request carries its own seed,
so the answer does not depend on which replica served it: with a seed-honouring backend
(embedded in deterministic mode, vLLM, transformers) the corpus is that of `engine: local`.

Faults: a batch whose replica dies (process killed, node lost) is put back at the front of the
queue and answered by another replica (or the same one, once Ray has restarted it); answers are
booked only when they reach the driver, so a re-run request is counted once, in `usage`, in the
cost meter and in the request cache. Tokens a dead replica spent on a batch whose answers were
lost cannot be seen by the driver; with a paid API that is at most 2 x batch_size requests per
death, paid again.

Money: the replicas' own backends are built without a budget; the driver's meter reserves each
call's worst case against `generation.max_cost` before anything is sent and books the cost each
replica reports per answer (its backend's prices, per mixture member). The request cache, when on,
wraps this object on the driver (`augpe.runner.components.build_llm`), so hits never travel to a replica.

Privacy: only `GenerationRequest`s (public templates and synthetic text) go to the replicas, the
same objects a local backend receives; no private record is ever sent (tests/llm/test_llm_privacy.py
spies on the xllamacpp server inside each replica).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from augpe.config import EmbeddedGeneration, ExecutionConfig, GenerationConfig
from augpe.config.generation import GENERATION
from augpe.errors import BackendError
from augpe.llm.base import LLM, Generation, GenerationRequest, OnResult, Usage, progress_bar
from augpe.llm.cost import Budget, CostMeter, Metered, Prices
from augpe.llm.mixture import MixtureLLM
from augpe.scale.cluster import connect, wait_ready

__all__ = ["RayLLM", "ReplicaStats", "make_ray_llm", "replica_config"]

log = logging.getLogger("augpe")

QUEUED_PER_REPLICA = 2  # batches sent ahead to each replica
READY_TIMEOUT = 600.0  # seconds for all replicas to load their model


# ---- what runs inside each actor -------------------------------------------------------------
def replica_config(cfg: GenerationConfig, execution: ExecutionConfig) -> GenerationConfig:
    """The backend config of one replica: no budget (the driver holds it), no cache (same).

    The embedded backend's `threads` default to the CPUs the replica reserved (all cores of a
    node would oversubscribe it when replicas share a node); thread count does not change the
    tokens llama.cpp samples.
    """
    update: dict[str, Any] = {"max_cost": None, "cache": False}
    if isinstance(cfg, EmbeddedGeneration) and cfg.threads is None:
        update["threads"] = max(1, int(execution.num_cpus))
    return cfg.model_copy(update=update)


def build_backend(cfg_json: dict[str, Any]) -> LLM:
    """Default replica factory: `make_llm` on the replica's config (runs inside the actor)."""
    from augpe.llm import make_llm

    return make_llm(GENERATION.validate_python(cfg_json), show_progress=False)


def _prices_of(llm: LLM) -> Prices:
    return llm.meter.prices if isinstance(llm.meter, CostMeter) else Prices()


def _node_id() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())


class _Replica:
    """The actor body: one backend, loaded once; answers batches and prices each answer."""

    def __init__(self, factory: Callable[[], LLM]) -> None:
        self.llm = factory()
        members = list(self.llm.members) if isinstance(self.llm, MixtureLLM) else [self.llm]
        self._prices = {m.name: _prices_of(m) for m in members}
        self._worst = Prices(
            max((p.input_per_1k for p in self._prices.values()), default=0.0),
            max((p.output_per_1k for p in self._prices.values()), default=0.0),
        )
        # An answer whose model name matches no member (a server that renames its model) is
        # priced at the dearest member: over-booking is safe, under-booking could cross max_cost.
        self._default = _prices_of(self.llm) if len(members) == 1 else self._worst

    def info(self) -> dict[str, Any]:
        worst = self._worst
        return {
            "name": self.llm.name,
            "cache_id": self.llm.cache_id,
            "pid": os.getpid(),
            "node": _node_id(),
            "worst_prices": (worst.input_per_1k, worst.output_per_1k),
        }

    def generate(
        self, requests: list[GenerationRequest], desc: str
    ) -> tuple[list[Generation], list[float], float, int]:
        start = time.perf_counter()
        gens = self.llm.generate(requests, desc)
        costs = [
            self._prices.get(g.model, self._default).cost(g.prompt_tokens, g.completion_tokens)
            for g in gens
        ]
        return gens, costs, time.perf_counter() - start, os.getpid()

    def close(self) -> None:
        self.llm.close()


# ---- the driver side -----------------------------------------------------------------------
class _DriverMeter(CostMeter):
    """The run's meter on the driver: books the cost a replica reports for each answer."""

    def record_reported(self, g: Generation, desc: str, cost: float) -> None:
        with self._lock:
            self.prompt_tokens += g.prompt_tokens
            self.completion_tokens += g.completion_tokens
            self.cost += cost
            key = desc or "generate"
            self.by_desc[key] = self.by_desc.get(key, 0.0) + cost


@dataclass
class ReplicaStats:
    """What one replica did, as booked on the driver (answers that reached it)."""

    requests: int = 0
    completion_tokens: int = 0
    prompt_tokens: int = 0
    busy_seconds: float = 0.0
    lost_batches: int = 0
    pids: list[int] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.busy_seconds if self.busy_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Counts only (functions of the synthetic requests): safe for the released summary."""
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "lost_batches": self.lost_batches,
            "processes": len(self.pids),
        }

    def timing(self) -> dict[str, Any]:
        """Wall time and tokens/s: the operator's (timings are kept out of releases, since
        work sharing the machine, such as the private embedding, can slow them)."""
        return {
            "busy_seconds": round(self.busy_seconds, 3),
            "tokens_per_second": round(self.tokens_per_second, 2),
        }


class RayLLM(Metered):
    """N replicas of one backend on Ray; `generate` spreads batches over them and survives deaths."""

    supports_on_result = True
    meter: _DriverMeter

    def __init__(
        self,
        factory: Callable[[], LLM],
        execution: ExecutionConfig,
        *,
        max_cost: float | None = None,
        show_progress: bool = True,
    ) -> None:
        self._replicas: list[Any] = []
        ray = connect(execution)
        self._ray = ray
        self._lost_errors = (
            ray.exceptions.RayActorError,
            ray.exceptions.WorkerCrashedError,
            ray.exceptions.NodeDiedError,
            ray.exceptions.ObjectLostError,
        )
        self.execution = execution
        self.show_progress = show_progress
        actor = ray.remote(_Replica).options(
            num_cpus=execution.num_cpus,
            num_gpus=execution.num_gpus,
            max_restarts=execution.max_restarts,
            max_task_retries=0,  # the driver re-runs lost batches itself, and books them once
            scheduling_strategy="SPREAD",
        )
        self._replicas = [actor.remote(factory) for _ in range(execution.replicas)]
        asked = f"num_cpus={execution.num_cpus:g}, num_gpus={execution.num_gpus:g}"
        try:
            infos = wait_ready(
                ray,
                [r.info.remote() for r in self._replicas],
                f"execution.replicas={execution.replicas}",
                asked,
                READY_TIMEOUT,
            )
        except BaseException:
            self.close()
            raise
        self.name = str(infos[0]["name"])
        self.cache_id = str(infos[0]["cache_id"])  # the backend's own: cache shared with local runs
        self.stats = [ReplicaStats(pids=[int(i["pid"])]) for i in infos]
        self.usage = Usage()
        self.meter = _DriverMeter(Prices(*infos[0]["worst_prices"]), Budget(max_cost))
        self._dead: set[int] = set()
        self._failures = [0] * len(self._replicas)
        self.reruns = 0  # requests re-run after their replica died (over the whole run)

    # ---- the LLM protocol ----------------------------------------------------------------
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        desc: str = "",
        on_result: OnResult | None = None,
    ) -> list[Generation]:
        if not requests:
            return []
        with self.metered(requests, desc):  # BudgetExceeded: nothing is sent
            return self._dispatch(list(requests), desc, on_result)

    def _dispatch(
        self, requests: list[GenerationRequest], desc: str, on_result: OnResult | None
    ) -> list[Generation]:
        ray = self._ray
        size = self.execution.batch_size
        todo: deque[list[int]] = deque(
            list(range(s, min(s + size, len(requests)))) for s in range(0, len(requests), size)
        )
        out: list[Generation | None] = [None] * len(requests)
        inflight: dict[Any, tuple[int, list[int]]] = {}
        cooling: dict[int, float] = {}  # replica -> time before which it gets no new batch
        before = [{**s.to_dict(), **s.timing()} for s in self.stats]
        reruns = 0
        with progress_bar(len(requests), desc, self.show_progress) as bar:
            while todo or inflight:
                now = time.monotonic()
                live = [
                    r
                    for r in range(len(self._replicas))
                    if r not in self._dead and cooling.get(r, 0.0) <= now
                ]
                queued = {r: 0 for r in live}
                for rr, _ in inflight.values():
                    if rr in queued:
                        queued[rr] += 1
                while todo:  # one batch per replica per round: small calls use every replica
                    free = [r for r in live if queued[r] < QUEUED_PER_REPLICA]
                    if not free:
                        break
                    for r in free:
                        if not todo:
                            break
                        batch = todo.popleft()
                        ref = self._replicas[r].generate.remote([requests[i] for i in batch], desc)
                        inflight[ref] = (r, batch)
                        queued[r] += 1
                if not inflight:
                    if len(self._dead) == len(self._replicas):
                        raise BackendError(
                            f"all {len(self._replicas)} generator replicas died "
                            f"(execution.max_restarts={self.execution.max_restarts} each); "
                            "finished answers are cached: resume the run"
                        )
                    time.sleep(0.2)  # every live replica is cooling down after a death
                    continue
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
                for ref in ready:
                    r, batch = inflight.pop(ref)
                    try:
                        gens, costs, busy, pid = ray.get(ref)
                    except self._lost_errors as err:
                        reruns += len(batch)
                        self._lost(r, batch, todo, cooling, err)
                        continue
                    except ray.exceptions.RayTaskError as err:  # the backend itself raised
                        raise err.as_instanceof_cause() from None
                    st = self.stats[r]
                    st.busy_seconds += busy
                    if pid not in st.pids:
                        st.pids.append(pid)
                    self._failures[r] = 0
                    for i, g, cost in zip(batch, gens, costs):
                        out[i] = g
                        self.usage.add(g)
                        self.meter.record_reported(g, desc, cost)
                        st.requests += 1
                        st.prompt_tokens += g.prompt_tokens
                        st.completion_tokens += g.completion_tokens
                        if on_result is not None:
                            on_result(i, g)
                    bar.update(len(batch))
                    bar.set_postfix(self._postfix(), refresh=False)
        self.reruns += reruns
        self._log_call(desc, len(requests), before, reruns)
        return [g if g is not None else Generation(text=None, error="no answer") for g in out]

    def _lost(
        self,
        r: int,
        batch: list[int],
        todo: deque[list[int]],
        cooling: dict[int, float],
        err: BaseException,
    ) -> None:
        """A batch whose replica died: back to the front of the queue, for any replica."""
        self.stats[r].lost_batches += 1
        self._failures[r] += 1
        todo.appendleft(batch)
        cooling[r] = time.monotonic() + 1.0  # let Ray restart it; others take the batch
        if self._failures[r] > self.execution.max_restarts + 1:
            self._dead.add(r)
        log.warning(
            "ray: generator replica %d lost a batch of %d requests (%s); re-running it elsewhere",
            r,
            len(batch),
            type(err).__name__,
        )

    def _postfix(self) -> dict[str, str]:
        return {
            f"r{r}": f"{s.requests}req {s.tokens_per_second:.0f}tok/s"
            for r, s in enumerate(self.stats)
        }

    def _log_call(self, desc: str, n: int, before: list[dict[str, Any]], reruns: int) -> None:
        parts = []
        for r, (s, b) in enumerate(zip(self.stats, before)):
            busy = s.busy_seconds - b["busy_seconds"]
            tok = s.completion_tokens - b["completion_tokens"]
            parts.append(
                f"r{r}: {s.requests - b['requests']} req, {tok} tok, "
                f"{tok / busy if busy > 0 else 0.0:.1f} tok/s"
            )
        log.info(
            "ray generate %r: %d requests on %d replicas (%s)%s",
            desc or "generate",
            n,
            len(self._replicas),
            "; ".join(parts),
            f"; {reruns} re-run after a replica died" if reruns else "",
        )

    # ---- reporting / lifecycle -----------------------------------------------------------
    def replica_pids(self) -> list[int]:
        """The current process id of each replica (the tests kill one)."""
        return [int(i["pid"]) for i in self._ray.get([r.info.remote() for r in self._replicas])]

    def cost_report(self) -> dict[str, Any]:
        """Tokens, cost and per-replica counts (goes into the released summary: no timings)."""
        report = super().cost_report()
        report["replicas"] = [s.to_dict() for s in self.stats]
        report["reruns_after_replica_death"] = self.reruns
        return report

    def replica_timings(self) -> list[dict[str, Any]]:
        """Per-replica busy seconds and tokens/s (shown in the progress bar and the log)."""
        return [s.timing() for s in self.stats]

    def close(self) -> None:
        for r in self._replicas:
            try:
                self._ray.kill(r)
            except Exception as err:  # noqa: BLE001 - already gone
                log.debug("ray: replica already gone (%s)", type(err).__name__)
        self._replicas = []


def make_ray_llm(
    cfg: GenerationConfig, execution: ExecutionConfig, show_progress: bool = True
) -> LLM:
    """The LLM of `engine: ray`: Ray Data LLM for vLLM (`execution.vllm: ray_data`), else actors."""
    if cfg.backend == "vllm" and not cfg.mixture and execution.vllm == "ray_data":
        from augpe.scale.ray_data_llm import RayDataVLLM

        return RayDataVLLM.from_config(cfg, execution, show_progress=show_progress)
    import functools

    factory = functools.partial(build_backend, replica_config(cfg, execution).model_dump())
    return RayLLM(factory, execution, max_cost=cfg.max_cost, show_progress=show_progress)
