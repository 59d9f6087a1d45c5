"""Evaluation that does not wait: real-text embeddings and real-data results kept on disk.

`augpe eval` compares a synthetic corpus with real text. The real side (the test split, the
real-data upper bound) is the same from one call to the next, and on a CPU it was most of the
time: embedding 1000 + 2000 reviews with MiniLM, then cross-validating a probe and fitting MAUVE's
k-means on them. Both are kept here, keyed by content:

  * `EmbeddingCache`: one vector per (embedding model, text), keyed by sha256(model NUL text), in
    .npz shards; any later call that embeds the same text with the same model reads it back,
    whatever the file, order or subset it came from;
  * `ResultCache`: the metrics of the real-data upper bound, keyed by a hash of everything they
    depend on (the real training and test texts and labels, the embedder, the options, augpe's
    version).

Real text is private, so the cache folder is a PRIVATE folder: `default_cache_dir()` is
`$AUGPE_EVAL_CACHE`, else `$XDG_CACHE_HOME/augpe/eval.PRIVATE` (~/.cache/augpe/eval.PRIVATE); never
a run folder or a release folder (`check_cache_dir` refuses both). It holds embeddings of private
text and non-DP numbers about it: do not share it, delete it to start fresh.

When the corpus is a run folder, `run_private_vectors` also reads the run's own private-embedding
cache (`<run>.PRIVATE/cache/`, see `augpe.embed.embed_private`) when it was made by the same model:
real training text that is the run's private data is then not embedded again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from augpe.embed import Embedder
from augpe.embed.private import private_embedding_file
from augpe.errors import AugpeError
from augpe.runner.layout import CORPUS, LEDGER, RunFolder

__all__ = [
    "EmbeddingCache",
    "ResultCache",
    "StoredEmbedder",
    "check_cache_dir",
    "content_key",
    "default_cache_dir",
    "run_private_vectors",
    "text_key",
]

log = logging.getLogger("augpe")
CACHE_ENV = "AUGPE_EVAL_CACHE"
_KEY_BYTES = 16


def default_cache_dir() -> Path:
    """$AUGPE_EVAL_CACHE, else $XDG_CACHE_HOME/augpe/eval.PRIVATE (default ~/.cache/...)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "augpe" / "eval.PRIVATE"


def check_cache_dir(cache_dir: Path, *public: Path) -> None:
    """Refuse a cache folder inside a run or release folder (or one holding it): those folders
    hold only release-safe files, and this cache holds embeddings of private text."""
    c = cache_dir.resolve()
    for p in public:
        q = p.resolve()
        if c == q or q in c.parents or c in q.parents:
            raise AugpeError(
                f"eval cache folder {cache_dir} must lie outside {p}: it holds embeddings of "
                "private (real) text; pick a PRIVATE folder (--cache-dir) or the default"
            )
    for marker in (CORPUS, LEDGER):
        for d in (c, *c.parents):
            if (d / marker).is_file():
                raise AugpeError(
                    f"eval cache folder {cache_dir} lies inside {d}, which looks like a run or "
                    "release folder; pick a PRIVATE folder (--cache-dir) or the default"
                )


def text_key(model: str, text: str) -> bytes:
    return hashlib.sha256(f"{model}\0{text}".encode()).digest()[:_KEY_BYTES]


def content_key(*parts: Any) -> str:
    """A hex digest of JSON-serialisable parts (lists of texts included)."""
    h = hashlib.sha256()
    for p in parts:
        b = json.dumps(p, sort_keys=True, ensure_ascii=False, default=str).encode()
        h.update(len(b).to_bytes(8, "little") + b)
    return h.hexdigest()


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class EmbeddingCache:
    """Vectors of one embedding model, keyed by text content, in `folder/<model hash>/*.npz`."""

    def __init__(self, folder: str | os.PathLike[str], model: str) -> None:
        self.model = model
        self.folder = Path(folder) / "embeddings" / hashlib.sha256(model.encode()).hexdigest()[:16]
        self._vectors: dict[bytes, np.ndarray] = {}
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for shard in sorted(self.folder.glob("*.npz")):
            try:
                with np.load(shard) as z:
                    keys, vecs = z["keys"], z["vectors"]
                if keys.dtype != np.uint8 or keys.shape != (len(vecs), _KEY_BYTES):
                    raise ValueError(f"keys of shape {keys.shape}, {keys.dtype}")
            except (OSError, ValueError, KeyError) as err:
                log.warning("eval cache: skipping unreadable %s (%s)", shard, err)
                continue
            for k, v in zip(keys, vecs):
                self._vectors.setdefault(k.tobytes(), v)

    def get(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        self._load()
        return [self._vectors.get(text_key(self.model, t)) for t in texts]

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Remember `vectors` (one row per text) in memory and in a new shard on disk."""
        self._load()
        keys = [text_key(self.model, t) for t in texts]
        new = [(k, v) for k, v in zip(keys, vectors) if k not in self._vectors]
        if not new:
            return
        for k, v in new:
            self._vectors[k] = v
        # Raw bytes as uint8 rows: a numpy bytes dtype ("S16") would drop a key's trailing NULs.
        key_arr = np.frombuffer(b"".join(k for k, _ in new), dtype=np.uint8).reshape(-1, _KEY_BYTES)
        vec_arr = np.stack([v for _, v in new]).astype(np.float32)
        name = hashlib.sha256(key_arr.tobytes()).hexdigest()[:24] + ".npz"

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, keys=key_arr, vectors=vec_arr)

        _atomic_write(self.folder / name, write)

    def seed(self, vectors: Mapping[str, np.ndarray]) -> int:
        """Add vectors known from elsewhere (the run's private cache) in memory only; returns
        how many were new."""
        self._load()
        n = 0
        for text, v in vectors.items():
            k = text_key(self.model, text)
            if k not in self._vectors:
                self._vectors[k] = v
                n += 1
        return n


class StoredEmbedder:
    """An Embedder for real text that reads `cache` first and embeds (then stores) only the rest.

    Every call says in the log what it embeds and how much came from the cache."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache
        self.name = inner.name
        self.embedded = 0  # texts actually sent to the model
        self.reused = 0  # texts read from the cache

    def encode(self, texts: Sequence[str], desc: str = "") -> np.ndarray:
        found = self.cache.get(texts)
        todo = list(dict.fromkeys(t for t, v in zip(texts, found) if v is None))
        what = desc.removeprefix("embed ") or "texts"
        log.info(
            "eval: %s, %d texts: %d from the private eval cache, embedding %d with %s",
            what,
            len(texts),
            len(texts) - sum(v is None for v in found),
            len(todo),
            self.name,
        )
        if todo:
            vecs = np.asarray(self.inner.encode(todo, desc=desc), dtype=np.float32)
            self.cache.put(todo, vecs)
            fresh = dict(zip(todo, vecs))
            found = [v if v is not None else fresh[t] for t, v in zip(texts, found)]
        self.embedded += len(todo)
        self.reused += len(texts) - len(todo)
        if not texts:
            return self.inner.encode([], desc=desc)
        return np.stack([np.asarray(v) for v in found]).astype(np.float32)  # type: ignore[misc]


class ResultCache:
    """JSON results keyed by content (`content_key`), in `folder/results/`."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder) / "results"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.folder / f"{key}.json"
        try:
            out: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return out
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        text = json.dumps(value, ensure_ascii=False)
        _atomic_write(self.folder / f"{key}.json", lambda p: p.write_text(text, encoding="utf-8"))


def run_private_vectors(run_dir: Path, embedder_name: str) -> dict[str, np.ndarray]:
    """{private text: vector} from the run's own private-embedding cache, when that cache was
    made by `embedder_name`; {} when there is none, or the private data cannot be read."""
    from augpe.config import DataConfig
    from augpe.records.data import load_private_data

    try:
        folder = RunFolder.open(run_dir)
        cfg, cache = folder.config(), folder.layout.private_cache
        if not cache.is_dir():
            return {}
        data = load_private_data(DataConfig(**(cfg.get("data") or {})))
    except (OSError, AugpeError, TypeError, ValueError) as err:
        log.debug("eval: the run's private-embedding cache is not usable (%s)", err)
        return {}
    path = private_embedding_file(cache, data.fingerprint(), embedder_name)
    if not path.is_file():
        return {}
    emb = np.load(path)
    if emb.shape[0] != len(data.texts):
        return {}
    return dict(zip(data.texts, emb))


def texts_and_labels(texts: Iterable[str], labels: Mapping[str, Sequence[str]]) -> list[Any]:
    """What a real corpus's results depend on, for `content_key`."""
    return [list(texts), {c: list(v) for c, v in sorted(labels.items())}]
