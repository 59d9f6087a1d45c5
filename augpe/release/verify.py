"""`augpe release RUN_DIR OUT`: copy the DP-safe artefacts of a run, and prove nothing else went.

The run folder is designed to be release-safe, but "designed to be" is not "checked". Release
copies an allow-list only (never a glob), into a staging folder, then verifies the staged copy
against the private data itself before it becomes OUT:

  * no file contains a private record: every record of >= MIN_WORDS words is searched for as a
    whole (whitespace-normalised) substring of every file, raw and JSON/YAML-decoded;
  * no file contains the clean class counts (a class-keyed mapping or a per-class list equal to
    them); with a single class the count is N, which the delta rule makes public anyway;
  * nothing from the PRIVATE folder: no `.PRIVATE` path, no `.npy` cache, no noise seed (the
    config's seed is redacted, and the seed kept in the PRIVATE folder appears in no file).

Any finding aborts the release and leaves OUT untouched. A run with eps = inf (no noise) is
refused unless `allow_non_private=True`: its "noisy" histograms are the clean ones.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from augpe.errors import AugpeError
from augpe.runner.layout import ARTEFACTS, artefact_table

log = logging.getLogger("augpe")

__all__ = [
    "ARTEFACTS",
    "MIN_WORDS",
    "RELEASE_FILES",
    "STATE_PATTERN",
    "ReleaseError",
    "artefact_table",
    "find_class_counts",
    "release",
    "scan_for_private",
]

RELEASE_FILES = tuple(name for name, released, _ in ARTEFACTS if released and "/" not in name)
"""The DP-safe top-level files of a run folder; the first three are required."""
REQUIRED = ("synthetic.jsonl", "ledger.json", "config.yaml")
STATE_PATTERN = re.compile(
    r"^(population_\d+|votes_\d+|class_counts|record_count|keywords|lengths|centroids)\.json$"
)
"""state/ files that hold only synthetic text or noisy histograms (released with include_state)."""
MIN_WORDS = 5
"""Shorter private records ("Great product, thanks!") occur in any corpus: not evidence of a leak."""
_PRIVATE_SUFFIXES = (".npy", ".npz", ".pkl", ".pt", ".faiss")
_SEED_MIN_DIGITS = 9  # a user-set seed like 0 or 1234 occurs in any text; an OS-drawn one never


class ReleaseError(AugpeError):
    """The release was refused; nothing was written to OUT."""


_PATH_SETTINGS = (
    ("data", "path"),
    ("output", "dir"),
    ("output", "private_dir"),
    ("generation", "cache_path"),
    ("generation", "api_key_file"),
)


def public_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config as released: machine paths (the private data's among them) cut to their names,
    and the cluster's address and runtime environment left out (machine facts, not method)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg.items()}
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


# ---- the scan --------------------------------------------------------------------------------
def _norm(text: str) -> str:
    return " ".join(text.split())


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _strings(v)


def _parsed(path: Path, raw: str) -> list[Any]:
    """The JSON / JSONL / YAML documents of a file ([] if it is none of them)."""
    try:
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in raw.splitlines() if line.strip()]
        if path.suffix == ".json":
            return [json.loads(raw)]
        if path.suffix in (".yaml", ".yml"):
            return [yaml.safe_load(raw)]
    except (ValueError, yaml.YAMLError):
        pass
    return []


def _haystack(path: Path) -> str:
    """Everything a reader of the file could read: the raw text and every decoded string value
    (JSON escapes \\" and \\n or \\uXXXX would hide a record from a raw search)."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    parts = [raw, *(s for doc in _parsed(path, raw) for s in _strings(doc))]
    return "\n".join(_norm(p) for p in parts)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def scan_for_private(folder: str | os.PathLike[str], texts: Sequence[str]) -> list[str]:
    """Findings (one line each) for every file under `folder` that contains a private record.

    Each record of >= MIN_WORDS words is looked for as a whole, whitespace-normalised, exact
    substring. An index of word trigrams makes this linear in the corpus: a record can only
    occur where its interior words (the first and last may be glued to punctuation) occur.
    """
    root = Path(folder)
    findings: list[str] = []
    wanted: dict[tuple[str, ...], list[int]] = {}
    norm_texts = [_norm(t) for t in texts]
    for i, t in enumerate(norm_texts):
        words = t.split(" ")
        if len(words) >= MIN_WORDS:
            wanted.setdefault(tuple(words[1:4]), []).append(i)
    for path in _files(root):
        rel = path.relative_to(root)
        hay = _haystack(path)
        toks = hay.split()
        seen: set[int] = set()
        for j in range(len(toks) - 2):
            for i in wanted.get((toks[j], toks[j + 1], toks[j + 2]), ()):
                if i not in seen and norm_texts[i] in hay:
                    seen.add(i)
                    findings.append(
                        f"{rel}: contains private record #{i} ({norm_texts[i][:40]!r}...)"
                    )
    return findings


def _numbers_equal(values: Sequence[Any], target: Sequence[int]) -> bool:
    if len(values) != len(target) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    ):
        return False
    return all(
        math.isclose(float(v), float(t), rel_tol=0.0, abs_tol=1e-9) for v, t in zip(values, target)
    )


def _walk(obj: Any, where: str) -> Iterator[tuple[Any, str]]:
    yield obj, where
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _walk(v, f"{where}[{i}]")


def find_class_counts(
    folder: str | os.PathLike[str], class_names: Sequence[str], counts: Sequence[int]
) -> list[str]:
    """Findings for every mapping {class: count} or per-class list that equals the clean counts.

    With one class the count is N, public by the delta rule: nothing to find.
    """
    if len(class_names) < 2:
        return []
    root = Path(folder)
    findings = []
    for path in _files(root):
        raw = path.read_bytes().decode("utf-8", errors="replace")
        for d, doc in enumerate(_parsed(path, raw)):
            for node, where in _walk(doc, f"{path.relative_to(root)}#{d}"):
                if isinstance(node, dict) and set(class_names) <= set(node):
                    values = [node[c] for c in class_names]
                elif isinstance(node, list):
                    values = node
                else:
                    continue
                if _numbers_equal(values, counts):
                    findings.append(f"{where}: equals the clean class counts {list(counts)}")
    return findings


def _private_artefacts(folder: Path, seed: int | None) -> list[str]:
    findings = []
    for path in _files(folder):
        rel = path.relative_to(folder)
        if any(part.endswith(".PRIVATE") for part in rel.parts) or ".PRIVATE" in path.name:
            findings.append(f"{rel}: a PRIVATE-folder path")
        if path.suffix in _PRIVATE_SUFFIXES or "private-embeddings" in path.name:
            findings.append(f"{rel}: a binary / embedding cache file")
        if path.name == "noise_seed.json":
            findings.append(f"{rel}: the noise seed file")
        searchable = seed is not None and len(str(abs(seed))) >= _SEED_MIN_DIGITS
        if searchable and str(abs(seed)) in path.read_bytes().decode("utf-8", errors="replace"):  # type: ignore[arg-type]
            findings.append(f"{rel}: contains the noise seed")
    cfg_path = folder / "config.yaml"
    if cfg_path.is_file():
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
        s = (cfg.get("privacy") or {}).get("noise_seed")
        if s not in (None, "<redacted>"):
            findings.append("config.yaml: privacy.noise_seed is not redacted")
    return findings


# ---- the release -----------------------------------------------------------------------------
def _private_dir(run_dir: Path, cfg: dict[str, Any]) -> Path:
    pd = (cfg.get("output") or {}).get("private_dir")
    return Path(pd) if pd else Path(str(run_dir) + ".PRIVATE")


def _noise_seed(private_dir: Path, nonce: str) -> int | None:
    from augpe.privacy import RunSecret

    path = RunSecret.path(private_dir, nonce)
    try:
        return int(json.loads(path.read_text())["noise_seed"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _inside(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or b in a.parents


def _allowed(run_dir: Path, include_state: bool) -> tuple[list[Path], list[str]]:
    """(files to copy, relative names of everything else in the run folder, never copied)."""
    take, skipped = [], []
    for path in _files(run_dir):
        rel = path.relative_to(run_dir)
        top = len(rel.parts) == 1 and rel.name in RELEASE_FILES
        state = (
            include_state
            and len(rel.parts) == 2
            and rel.parts[0] == "state"
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

    cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}
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
    from augpe.privacy import Ledger

    run = Path(run_dir)
    dest = Path(out)
    if run.name.endswith(".PRIVATE"):
        raise ReleaseError(f"{run} is a PRIVATE folder; it is never released")
    missing = [f for f in REQUIRED if not (run / f).is_file()]
    if missing:
        raise ReleaseError(
            f"{run} is not a finished augpe run folder (missing {', '.join(missing)})"
        )
    if _inside(dest, run) or _inside(run, dest):
        raise ReleaseError(
            f"release folder {dest} must lie outside the run folder {run} (and not contain it)"
        )
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ReleaseError(f"release folder {dest} already exists and is not empty; pick a new one")

    cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}
    private_dir = _private_dir(run, cfg)
    if _inside(dest, private_dir):
        raise ReleaseError(f"release folder {dest} lies inside the PRIVATE folder {private_dir}")
    ledger = Ledger.load(run / "ledger.json")
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
    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".staging", dir=dest.parent))
    try:
        for rel in take:
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run / rel, stage / rel)
        (stage / "config.yaml").write_text(
            yaml.safe_dump(public_config(cfg), sort_keys=False), encoding="utf-8"
        )
        findings = (
            _private_artefacts(stage, _noise_seed(private_dir, ledger.run_nonce))
            + find_class_counts(stage, class_names, counts)
            + scan_for_private(stage, texts)
        )
        if findings:
            shown = "\n  ".join(findings[:20]) + (
                f"\n  ... and {len(findings) - 20} more" if len(findings) > 20 else ""
            )
            raise ReleaseError(f"release of {run} refused, nothing written to {dest}:\n  {shown}")
        if dest.exists():
            dest.rmdir()
        os.replace(stage, dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [dest / rel for rel in take]
