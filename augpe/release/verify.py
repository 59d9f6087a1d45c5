"""`augpe release RUN_DIR OUT`: copy the DP-safe artefacts of a run, and prove nothing else went.

The run folder is designed to be release-safe, but "designed to be" is not "checked". Release
copies an allow-list only (never a glob), into a staging folder, then verifies the staged copy
against the private data itself before it becomes OUT:

  * no file contains a private record: every record of >= MIN_WORDS words is searched for as a
    whole (whitespace-normalised) substring of every file, raw and JSON/YAML-decoded;
  * no file contains the clean class counts (a class-keyed mapping or a per-class list equal to
    them); with a single class that count is N, the number of private records, which is never
    published (delta is fixed before the data is read, from the config or a public bound);
  * nothing from the PRIVATE folder: no `.PRIVATE` path, no `.npy` cache, no noise seed (the
    config's seed is redacted, and the seed kept in the PRIVATE folder appears in no file);
  * no file's contents hold ".PRIVATE" or an absolute path of this machine (the run, the private
    data, the home folder, ...).

The scans live in `augpe.release.scan`; their findings name files, never private text or a count
of private records. Any finding aborts the release and leaves OUT untouched. A run with
eps = inf (no noise) is refused unless `allow_non_private=True`: its "noisy" histograms are the
clean ones.

What leaves carries no metadata of the run folder (`augpe.release.staging`): files are copied as
bytes, and every file and folder gets one constant timestamp and fixed permissions. The release is
built in a marked staging folder beside OUT; a leftover of a killed release is removed by the next.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from augpe.config import WEAK_EPSILON
from augpe.errors import AugpeError
from augpe.release.scan import (
    MIN_WORDS,
    find_class_counts,
    find_machine_paths,
    find_private_artefacts,
    machine_paths,
    released_files,
    scan_for_private,
)
from augpe.release.staging import copy_plain, normalize_tree, staging
from augpe.runner.layout import (
    ARTEFACTS,
    CONFIG,
    CORPUS,
    LEDGER,
    STATE,
    RunFolder,
    artefact_table,
    inside,
)

log = logging.getLogger("augpe")

__all__ = [
    "ARTEFACTS",
    "MIN_WORDS",
    "RELEASE_FILES",
    "STATE_PATTERN",
    "ReleaseError",
    "artefact_table",
    "find_class_counts",
    "find_machine_paths",
    "release",
    "scan_for_private",
]

RELEASE_FILES = tuple(name for name, released, _ in ARTEFACTS if released and "/" not in name)
"""The DP-safe top-level files of a run folder; the first three are required."""
REQUIRED = (CORPUS, LEDGER, CONFIG)
STATE_PATTERN = re.compile(
    r"^(population_\d+|votes_\d+|class_counts|record_count|keywords|lengths|centroids)\.json$"
)
"""state/ files that hold only synthetic text or noisy histograms (released with include_state)."""


class ReleaseError(AugpeError):
    """The release was refused; nothing was written to OUT."""


_PATH_SETTINGS = (
    ("data", "path"),
    ("output", "dir"),
    ("generation", "cache_path"),
    ("generation", "api_key_file"),
)


def public_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config as released: machine paths (the private data's among them) cut to their names,
    the PRIVATE folder's left out (null: beside the run folder), and the cluster's address and
    runtime environment left out (machine facts, not method)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg.items()}
    if isinstance(out.get("output"), dict) and out["output"].get("private_dir"):
        out["output"]["private_dir"] = None
    for section, key in _PATH_SETTINGS:
        value = (out.get(section) or {}).get(key)
        if isinstance(value, str) and value:
            out[section][key] = Path(value).name
    execution = out.get("execution")
    if isinstance(execution, dict):
        for key in ("address", "runtime_env"):
            if execution.get(key):
                execution[key] = "<not released>"
    return out


# ---- the release -----------------------------------------------------------------------------
def _noise_seed(private_dir: Path, nonce: str) -> int | None:
    from augpe.privacy import RunSecret

    path = RunSecret.path(private_dir, nonce)
    try:
        return int(json.loads(path.read_text())["noise_seed"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _allowed(run_dir: Path, include_state: bool) -> tuple[list[Path], list[str]]:
    """(files to copy, relative names of everything else in the run folder, never copied)."""
    take, skipped = [], []
    for path in released_files(run_dir):
        rel = path.relative_to(run_dir)
        top = len(rel.parts) == 1 and rel.name in RELEASE_FILES
        state = (
            include_state
            and len(rel.parts) == 2
            and rel.parts[0] == STATE
            and STATE_PATTERN.match(rel.name) is not None
        )
        if top or state:
            take.append(rel)
        else:
            skipped.append(str(rel))
    return take, skipped


def private_reference(
    run: Path, private_data: str | None, private_texts: Iterable[str] | None
) -> tuple[list[str], list[str], list[int]]:
    """What the scans compare against, read from the *run's* config (a released copy has its file
    paths cut to their names): the private texts, and the class names and clean counts (empty when
    only texts were given). Held in memory for the scan, never written."""
    if private_texts is not None:
        return list(private_texts), [], []
    from augpe.config import DataConfig
    from augpe.records.data import load_private_data

    cfg = RunFolder.open(run).config()
    data_cfg = dict(cfg.get("data") or {})
    if private_data is not None:
        data_cfg["path"] = private_data
    try:
        data = load_private_data(DataConfig(**data_cfg))
    except (AugpeError, TypeError, ValueError) as err:
        raise ReleaseError(
            f"cannot read the private data to verify the release against ({err}); "
            "give its path with --data"
        ) from None
    counts = [int(c) for c in np.bincount(data.class_ids, minlength=data.num_classes)]
    return data.texts, data.class_names, counts


def release(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    include_state: bool = False,
    *,
    private_data: str | None = None,
    private_texts: Iterable[str] | None = None,
    allow_non_private: bool = False,
) -> list[Path]:
    """Copy the DP-safe artefacts of `run_dir` to `out` (which must not exist or be empty),
    verified against the private data. Returns the files written, under `out`.

    The private records are read from the run's config (`data` section) unless `private_data`
    (a path for data.path) or `private_texts` is given. Raises ReleaseError on any finding.
    """

    run = Path(run_dir)
    dest = Path(out)
    if run.name.endswith(".PRIVATE"):
        raise ReleaseError(f"{run} is a PRIVATE folder; it is never released")
    missing = [f for f in REQUIRED if not (run / f).is_file()]
    if missing:
        raise ReleaseError(
            f"{run} is not a finished augpe run folder (missing {', '.join(missing)})"
        )
    if inside(dest, run) or inside(run, dest):
        raise ReleaseError(
            f"release folder {dest} must lie outside the run folder {run} (and not contain it)"
        )
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ReleaseError(f"release folder {dest} already exists and is not empty; pick a new one")

    folder = RunFolder.open(run)
    cfg, private_dir = folder.config(), folder.layout.private
    if inside(dest, private_dir):
        raise ReleaseError(f"release folder {dest} lies inside the PRIVATE folder {private_dir}")
    ledger = folder.ledger()
    try:
        ledger.assert_within_target()
    except RuntimeError as err:
        raise ReleaseError(f"{run}: {err}") from None
    if not math.isfinite(ledger.epsilon()) and not allow_non_private:
        raise ReleaseError(
            f"{run} was run with no noise (eps = inf): it is NOT differentially private and its "
            "histograms are clean counts; refusing (--allow-non-private, or "
            "allow_non_private=True, to release it anyway)"
        )

    # What the verification checks against: the private records and their clean class counts.
    texts, class_names, counts = private_reference(run, private_data, private_texts)

    take, skipped = _allowed(run, include_state)
    for name in skipped:
        log.warning("release: not copied (not on the allow-list): %s", name)
    paths = machine_paths(run, dest, private_dir, cfg)
    with staging(dest, "staging") as work:
        stage = work / "release"
        for rel in take:
            copy_plain(run / rel, stage / rel)  # bytes only: no time, owner or mode
        (stage / CONFIG).write_text(
            yaml.safe_dump(public_config(cfg), sort_keys=False), encoding="utf-8"
        )
        findings = (
            find_private_artefacts(stage, _noise_seed(private_dir, ledger.run_nonce))
            + find_class_counts(stage, class_names, counts)
            + scan_for_private(stage, texts)
            + find_machine_paths(stage, paths)
        )
        if findings:
            eps = ledger.epsilon()
            if math.isfinite(eps) and eps > WEAK_EPSILON:
                findings.append(
                    f"the run's eps = {eps:g} adds noise too small to hide what the data holds; "
                    "run again with a single-digit privacy.epsilon"
                )
            raise refusal(f"release of {run} refused, nothing written to {dest}", findings)
        publish(stage, dest)
    return [dest / rel for rel in take]


def refusal(head: str, findings: list[str]) -> ReleaseError:
    """The error of a refused release: `head`, then the findings (at most 20 shown)."""
    shown = "\n  ".join(findings[:20]) + (
        f"\n  ... and {len(findings) - 20} more" if len(findings) > 20 else ""
    )
    return ReleaseError(f"{head}:\n  {shown}")


def publish(stage: Path, dest: Path) -> None:
    """Move the verified `stage` to `dest` (absent or an empty folder), every file and folder at
    the one release timestamp with fixed permissions."""
    normalize_tree(stage)
    if dest.exists():
        dest.rmdir()
    os.replace(stage, dest)
    normalize_tree(dest)  # a move may touch the moved folder's own times
