"""Private embeddings: computed once per run, cached in the PRIVATE folder (never a release
folder), keyed by the data fingerprint and the model name, so a resumed or repeated run does not
pay again; optionally computed in the background while the initial population is generated."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from augpe.embed.base import Embedder
from augpe.timing import Timer


def private_embedding_file(cache_dir: Path, fingerprint: str, embedder_name: str) -> Path:
    """Where the PRIVATE cache keeps the embeddings of data `fingerprint` by `embedder_name`."""
    key = hashlib.sha256(f"{fingerprint}|{embedder_name}".encode()).hexdigest()[:24]
    return cache_dir / f"private-embeddings-{key}.npy"


def embed_private(
    embedder: Embedder, texts: Sequence[str], fingerprint: str, cache_dir: Path | None
) -> np.ndarray:
    """Embed the private texts once; reuse the PRIVATE cache when its key matches."""
    if cache_dir is None:
        return embedder.encode(texts, desc="embed private")
    path = private_embedding_file(cache_dir, fingerprint, embedder.name)
    if path.is_file():
        emb = np.load(path)
        if emb.shape[0] == len(texts):
            return emb
    emb = embedder.encode(texts, desc="embed private")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    os.replace(tmp, path)
    return emb


class PrivateEmbeddings:
    """The private embeddings, computed once: at once, or on a background thread (`background`)
    while the caller goes on with work that needs no private data (the initial population).

    `get()` waits for them (the wait is timed as stage "wait_private"); `after(embedder)` is the
    embedder for everything else, whose calls first wait, so one model never runs on two threads.
    """

    def __init__(
        self, compute: Callable[[], np.ndarray], background: bool, timer: Timer | None = None
    ) -> None:
        self._timer = timer or Timer()
        self._future: Future[np.ndarray] = Future()
        if background:
            # A daemon thread: an error or Ctrl-C in the main thread does not wait for it.
            threading.Thread(
                target=self._fill, args=(compute,), name="augpe-embed-private", daemon=True
            ).start()
        else:
            self._future.set_result(compute())

    def _fill(self, compute: Callable[[], np.ndarray]) -> None:
        try:
            self._future.set_result(compute())
        except BaseException as err:  # noqa: BLE001 - re-raised in the main thread by get()
            self._future.set_exception(err)

    def get(self) -> np.ndarray:
        if not self._future.done():
            with self._timer.stage(0, "wait_private"):
                return self._future.result()
        return self._future.result()

    def after(self, embedder: Embedder) -> Embedder:
        return _AfterPrivate(embedder, self)


class _AfterPrivate:
    def __init__(self, inner: Embedder, private: PrivateEmbeddings) -> None:
        self.inner = inner
        self.private = private
        self.name = inner.name

    def encode(self, texts: Sequence[str], desc: str = "") -> np.ndarray:
        self.private.get()
        return self.inner.encode(texts, desc)
