"""Shared by the perf scripts: where results go, what machine made them, peak memory, timing.

Every script writes one JSON file under benchmarks/perf/results/ holding the command line, the
machine (CPU model, cores, load average at start and end, memory, library versions) and its numbers.
The machines these run on are shared, so ratios are always taken *within one run*.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RESULTS = HERE / "results"

_LIBS = (
    "augpe",
    "numpy",
    "torch",
    "faiss-cpu",
    "transformers",
    "sentence-transformers",
    "xllamacpp",
    "gguf",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _gpu() -> str | None:
    try:
        import torch

        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            return f"{p.name} ({p.total_memory / 2**30:.0f} GiB)"
    except (ImportError, RuntimeError, AssertionError):  # torch missing or CUDA broken: no GPU
        return None
    return None


def machine() -> dict[str, Any]:
    versions = {}
    for lib in _LIBS:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    mem_gib = None
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {
        "host": socket.gethostname(),
        "cpu": _cpu_model(),
        "cores_usable": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_gib": mem_gib,
        "loadavg_start": list(os.getloadavg()),
        "gpu": _gpu(),
        "python": platform.python_version(),
        "versions": versions,
        "omp_env": {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_", "MKL_"))},
    }


def peak_rss_gib() -> float:
    """High-water mark of this process's resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - t0


def write_result(name: str, payload: dict[str, Any], out: str | None = None) -> Path:
    """Write {command, machine, started, results...} to results/<name>-<UTC time>.json."""
    info = payload.pop("_machine", None) or machine()
    info["loadavg_end"] = list(os.getloadavg())
    doc = {
        "benchmark": name,
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "cwd": os.getcwd(),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": info,
        **payload,
    }
    path = (
        Path(out)
        if out
        else RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=float) + "\n", encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
    return path
