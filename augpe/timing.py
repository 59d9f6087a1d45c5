"""Per-stage wall time, per iteration: written to timings.json and shown in the summary.

Stages are exclusive: a stage entered inside another (on the same thread) stops the outer one's
clock, so one thread's stages never count the same second twice. A stage run on another thread
(the private embedding, overlapped with the initial generation) has its own clock.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class Timer:
    def __init__(self) -> None:
        self.seconds: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.start = time.perf_counter()
        self._local = threading.local()
        self._lock = threading.Lock()

    @contextmanager
    def stage(self, iteration: int, name: str) -> Iterator[None]:
        stack: list[float] = self._local.__dict__.setdefault("stack", [])
        stack.append(0.0)  # time spent in stages nested inside this one
        t0 = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - t0
            nested = stack.pop()
            with self._lock:
                self.seconds[iteration][name] += elapsed - nested
            if stack:
                stack[-1] += elapsed

    def iteration(self, t: int) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.seconds.get(t, {}).items()}

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for stages in self.seconds.values():
            for name, sec in stages.items():
                out[name] += sec
        return {k: round(v, 3) for k, v in sorted(out.items())}

    def to_dict(self) -> dict[str, object]:
        return {
            "wall_seconds": round(time.perf_counter() - self.start, 3),
            "totals": self.totals(),
            "per_iteration": {
                str(t): {k: round(v, 3) for k, v in st.items()}
                for t, st in sorted(self.seconds.items())
            },
        }
