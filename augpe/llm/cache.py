"""A persistent request cache: a rerun or a resumed run never pays twice for the same completion.

`CachedLLM(inner, path)` is itself an LLM. A request is looked up by a hash of everything that
decides its answer: the backend (kind, model, endpoint), the messages, the sampling parameters and
the request's seed. Hits come from an SQLite file; misses go to `inner`, and each successful
answer is written as soon as it arrives (in small transactions), so a run killed halfway keeps
what it paid for. Failed generations are never cached: the next run asks again.

Privacy: prompts hold only public templates and synthetic text, and answers are synthetic, so
the cache holds nothing private and may live outside the PRIVATE folder. The default location,
`<output.dir>/../.augpe-cache/requests.sqlite`, sits beside the run folder rather than inside
it: `output.overwrite` wipes the run folder, and the cache is meant to outlive it (it is shared
by every run in the same parent folder). It is not part of the released run.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from augpe.config import GenerationConfig
from augpe.llm.base import LLM, BaseLLM, Generation, GenerationRequest, OnResult, Usage

__all__ = [
    "CachedLLM",
    "RequestCache",
    "default_cache_path",
    "request_key",
    "resolve_cache_path",
    "wrap_with_cache",
]

CACHE_DIR = ".augpe-cache"
CACHE_FILE = "requests.sqlite"
_KEY_VERSION = 1


def default_cache_path(output_dir: str | Path) -> Path:
    """`<output.dir>/../.augpe-cache/requests.sqlite`: beside the run, shared by sibling runs."""
    return Path(output_dir).expanduser().resolve().parent / CACHE_DIR / CACHE_FILE


NON_PRIVATE_SUFFIX = ".nonprivate"


def resolve_cache_path(
    cfg: GenerationConfig, output_dir: str | Path, *, private: bool = True
) -> Path | None:
    """Where this run's cache lives, or None when `generation.cache` is off.

    A run with eps = inf (`private=False`) selects parents by clean votes: its texts are not DP,
    so they go to a file of their own (`requests.nonprivate.sqlite`) and never sit in, or get
    served from, the cache that DP runs share.
    """
    if not cfg.cache:
        return None
    path = Path(cfg.cache_path).expanduser() if cfg.cache_path else default_cache_path(output_dir)
    return path if private else path.with_name(path.stem + NON_PRIVATE_SUFFIX + path.suffix)


def request_key(backend_id: str, req: GenerationRequest) -> str:
    """Everything that decides an answer, hashed: backend, prompt, sampling parameters, seed."""
    ident = {
        "v": _KEY_VERSION,
        "backend": backend_id,
        "messages": req.messages,
        "max_tokens": req.max_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "stop": list(req.stop),
        "seed": req.seed,
    }
    blob = json.dumps(ident, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class RequestCache:
    """The SQLite file: one row per successful completion. Safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
        except sqlite3.DatabaseError:
            pass  # e.g. a network file system: the default journal works too
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS completions ("
            " key TEXT PRIMARY KEY, backend TEXT NOT NULL, text TEXT NOT NULL,"
            " prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
            " finish_reason TEXT NOT NULL, model TEXT NOT NULL, created REAL NOT NULL)"
        )
        self._db.commit()

    def get_many(self, keys: Sequence[str]) -> dict[str, Generation]:
        found: dict[str, Generation] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for k in range(0, len(unique), 500):
                chunk = unique[k : k + 500]
                rows = self._db.execute(
                    "SELECT key, text, prompt_tokens, completion_tokens, finish_reason, model "
                    f"FROM completions WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for key, text, pt, ct, fr, model in rows:
                    found[key] = Generation(
                        text=text,
                        prompt_tokens=pt,
                        completion_tokens=ct,
                        finish_reason=fr,
                        model=model,
                    )
        return found

    def put_many(self, backend_id: str, items: Sequence[tuple[str, Generation]]) -> None:
        rows = [
            (
                k,
                backend_id,
                g.text,
                g.prompt_tokens,
                g.completion_tokens,
                g.finish_reason,
                g.model,
                time.time(),
            )
            for k, g in items
            if g.text is not None
        ]
        if not rows:
            return
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO completions VALUES (?,?,?,?,?,?,?,?)", rows
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedLLM(BaseLLM):
    """An LLM that answers repeated requests from disk and forwards the rest to `inner`.

    `usage` and cost are the inner backend's: they count what was really generated and paid for;
    `hits` / `misses` say how much the cache saved. `served` counts every answer returned, from
    the cache or not: the run's own totals, whatever other runs left in the cache.
    """

    supports_on_result = True

    def __init__(
        self,
        inner: LLM,
        path: str | Path,
        flush_every: int = 32,
        flush_seconds: float = 2.0,
        chunk_size: int = 256,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.backend_id = inner.cache_id
        self.cache_id = inner.cache_id
        self.store = RequestCache(path)
        self.path = self.store.path
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self.chunk_size = chunk_size  # for inner backends that cannot report answers one by one
        self.hits = 0
        self.misses = 0
        self.served = Usage()
        # The inner backend's own objects (updated in place), not copies.
        self.usage: Usage = inner.usage
        self.meter = inner.meter

    def key(self, req: GenerationRequest) -> str:
        return request_key(self.backend_id, req)

    def worst_case(self, requests: Sequence[GenerationRequest]) -> float:
        """Worst-case cost of the requests the cache cannot answer (hits are free)."""
        if self.meter is None:
            return 0.0
        found = self.store.get_many([self.key(r) for r in requests])
        return float(self.meter.worst_case([r for r in requests if self.key(r) not in found]))

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        desc: str = "",
        on_result: OnResult | None = None,
    ) -> list[Generation]:
        keys = [self.key(r) for r in requests]
        found = self.store.get_many(keys)
        out: list[Generation | None] = [found.get(k) for k in keys]
        miss = [i for i, g in enumerate(out) if g is None]
        self.hits += len(requests) - len(miss)
        self.misses += len(miss)
        if on_result is not None:
            for i, g in enumerate(out):
                if g is not None:
                    on_result(i, g)
        if miss:
            self._fill(requests, keys, miss, out, desc, on_result)
        answers = [
            g if g is not None else Generation(text=None, model=self.name, error="no answer")
            for g in out
        ]
        for g in answers:
            self.served.add(g)
        return answers

    def _fill(
        self,
        requests: Sequence[GenerationRequest],
        keys: list[str],
        miss: list[int],
        out: list[Generation | None],
        desc: str,
        on_result: OnResult | None,
    ) -> None:
        pending: list[tuple[str, Generation]] = []
        lock = threading.Lock()
        last_flush = [time.monotonic()]

        def flush() -> None:
            with lock:
                items = pending[:]
                pending.clear()
                last_flush[0] = time.monotonic()
            self.store.put_many(self.backend_id, items)

        def got(j: int, g: Generation, offset: int = 0) -> None:
            i = miss[offset + j]
            out[i] = g
            if g.text is not None:
                with lock:
                    pending.append((keys[i], g))
                    due = (
                        len(pending) >= self.flush_every
                        or time.monotonic() - last_flush[0] >= self.flush_seconds
                    )
                if due:
                    flush()
            if on_result is not None:
                on_result(i, g)

        todo = [requests[i] for i in miss]
        try:
            if self.inner.supports_on_result:
                gens = self.inner.generate(todo, desc, on_result=got)
                for j, g in enumerate(gens):  # in case a backend did not report some answer
                    if out[miss[j]] is None:
                        got(j, g)
            else:
                for k in range(0, len(todo), self.chunk_size):
                    for j, g in enumerate(self.inner.generate(todo[k : k + self.chunk_size], desc)):
                        got(j, g, offset=k)
                    flush()
        finally:
            flush()  # a crash or BudgetExceeded keeps every answer already paid for

    def cost_report(self) -> dict[str, Any]:
        report = dict(self.inner.cost_report())
        report["cache_hits"] = self.hits
        report["cache_misses"] = self.misses
        report["cache_path"] = str(self.path)
        return report

    def close(self) -> None:
        self.store.close()
        self.inner.close()


def wrap_with_cache(llm: LLM, path: str | Path | None) -> LLM:
    """Put a request cache in front of a backend (each member of a mixture gets its own key space).

    `path=None` returns `llm` unchanged, so callers can pass `resolve_cache_path(...)` directly.
    """
    if path is None or isinstance(llm, CachedLLM):
        return llm
    from augpe.llm.mixture import MixtureLLM

    if isinstance(llm, MixtureLLM):
        llm.members = [wrap_with_cache(m, path) for m in llm.members]
        return llm
    return CachedLLM(llm, path)
