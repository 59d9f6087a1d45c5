"""Where a release is built before it becomes OUT, and the file metadata it leaves with.

A release is assembled in a hidden staging folder beside OUT (`.<OUT name>.<random>.<kind>`) and
moved into place only once verified. The staging folder holds a marker file naming the release and
the process that built it, so a later release can prove a leftover folder is ours (its name
pattern and its marker) and that its builder is gone (killed), and remove it: a complete but
unverified copy must not sit beside OUT for ever.

Metadata: every file and folder that leaves carries one constant modification time
(SOURCE_DATE_EPOCH if set, else 2000-01-01T00:00:00Z) and fixed permissions (0644 / 0755). A copy
that kept the run folder's times would publish the run's timeline: the gap between the ledger and
the corpus is the last vote's wall time, which grows with the number of private records. Files are
copied as bytes only (never `copy2`), so no time, owner or mode of the run folder comes along.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("augpe")

__all__ = [
    "DEFAULT_EPOCH",
    "MARKER",
    "copy_plain",
    "normalize_tree",
    "release_epoch",
    "remove_stale_staging",
    "staging",
]

DEFAULT_EPOCH = 946_684_800
"""2000-01-01T00:00:00Z: the modification time of every released file (unless SOURCE_DATE_EPOCH)."""
MARKER = ".augpe-release-staging"
"""The file inside a staging folder that says which release built it, and in which process."""
KINDS = ("staging", "export")
FILE_MODE, DIR_MODE = 0o644, 0o755
STALE_AFTER_S = 24 * 3600  # a leftover from another machine is stale after a day
_RANDOM = r"[a-z0-9_]{8}"  # what tempfile.mkdtemp puts between prefix and suffix


def release_epoch() -> int:
    """The one timestamp of a release: SOURCE_DATE_EPOCH (reproducible builds) if set, else
    2000-01-01T00:00:00Z. Never the time of the run or of the release."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            log.warning("SOURCE_DATE_EPOCH=%r is not an integer; using 2000-01-01", raw)
        else:
            if value >= 0:
                return value
    return DEFAULT_EPOCH


def copy_plain(src: Path, dst: Path) -> None:
    """Copy the bytes of `src` to `dst`: no time stamps, owner or permissions come along."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def normalize_tree(root: Path, epoch: int | None = None) -> None:
    """Give `root` and everything under it fixed permissions and the one release timestamp
    (children first, so setting a file's time cannot touch its folder's afterwards)."""
    t = release_epoch() if epoch is None else epoch
    paths = sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True)
    for path in [*paths, root]:
        if path.is_symlink():
            continue  # a release holds no links; the scan reads only regular files
        os.chmod(path, DIR_MODE if path.is_dir() else FILE_MODE)
        os.utime(path, (t, t))


def _pattern(dest: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(dest.name)}\.{_RANDOM}\.(?:{'|'.join(KINDS)})$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: assume it is running
    return True


def _is_stale(folder: Path, dest: Path) -> bool:
    """Ours (name pattern and marker for this OUT) and no longer being built."""
    marker = folder / MARKER
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
        age = time.time() - marker.stat().st_mtime
    except (OSError, ValueError):
        return False  # no readable marker: not provably ours
    if not isinstance(info, dict) or info.get("out") != dest.name:
        return False
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
        return info["pid"] != os.getpid() and not _alive(info["pid"])
    return age > STALE_AFTER_S


def remove_stale_staging(dest: Path) -> list[Path]:
    """Remove the staging folders a killed release to `dest` left beside it; returns them.

    Only folders that match the staging name pattern of this OUT and hold our marker are touched,
    and only when the process that made them is gone."""
    parent = dest.parent
    if not parent.is_dir():
        return []
    pattern = _pattern(dest)
    removed = []
    for folder in sorted(parent.iterdir()):
        ours = pattern.match(folder.name) and folder.is_dir() and not folder.is_symlink()
        if ours and _is_stale(folder, dest):
            shutil.rmtree(folder, ignore_errors=True)
            log.warning("release: removed a stale staging folder %s", folder.name)
            removed.append(folder)
    return removed


@contextmanager
def staging(dest: Path, kind: str) -> Iterator[Path]:
    """A fresh staging folder beside `dest`, marked as ours; removed on the way out, whatever
    happens (the verified release has been moved out of it by then)."""
    if kind not in KINDS:
        raise ValueError(f"staging kind {kind!r}: one of {KINDS}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(dest)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=f".{kind}", dir=dest.parent))
    try:
        info = {"tool": "augpe release", "out": dest.name, "pid": os.getpid()}
        info["host"] = socket.gethostname()
        (work / MARKER).write_text(json.dumps(info), encoding="utf-8")
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
