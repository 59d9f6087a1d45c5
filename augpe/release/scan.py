"""The scans a release must pass: every finding is one line naming a released file, and no finding
ever holds private text or a count of private records (an error message is read, pasted and
logged: it must be as safe to share as the release itself).

  * `scan_for_private`: a private record of >= MIN_WORDS words, whole and whitespace-normalised,
    in the raw text or any JSON / YAML-decoded string of a file;
  * `find_class_counts`: a class-keyed mapping or per-class list equal to the clean class counts
    (with a single class, the number of private records N, which is never published either);
  * `find_private_artefacts`: anything from the PRIVATE folder (paths, caches, the noise seed);
  * `find_machine_paths`: an absolute path of this machine (the run, the private data, the home
    folder, ...) or the string ".PRIVATE" in a file's *contents*.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from augpe.runner.layout import CONFIG, RunFolder

__all__ = [
    "MIN_WORDS",
    "PRIVATE_MARK",
    "find_class_counts",
    "find_machine_paths",
    "find_private_artefacts",
    "machine_paths",
    "released_files",
    "scan_for_private",
]

MIN_WORDS = 5
"""Shorter private records ("Great product, thanks!") occur in any corpus: not evidence of a leak."""
PRIVATE_MARK = ".PRIVATE"
_PRIVATE_SUFFIXES = (".npy", ".npz", ".pkl", ".pt", ".faiss")
_SEED_MIN_DIGITS = 9  # a user-set seed like 0 or 1234 occurs in any text; an OS-drawn one never


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


def _raw(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def _readable(path: Path) -> list[str]:
    """Everything a reader of the file could read: the raw text and every decoded string value
    (JSON escapes \\" and \\n or \\uXXXX would hide a record or a path from a raw search)."""
    raw = _raw(path)
    return [raw, *(s for doc in _parsed(path, raw) for s in _strings(doc))]


def released_files(folder: Path) -> list[Path]:
    """Every regular file under `folder`, in a fixed order."""
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _first_line(path: Path, record: str) -> int | None:
    """The 1-based line of `path` where `record` (normalised) first occurs, raw or decoded."""
    for n, line in enumerate(_raw(path).splitlines(), 1):
        parts = [line, *_strings(_parsed(Path("x.jsonl"), line))]
        if any(record in _norm(p) for p in parts):
            return n
    return None


def scan_for_private(folder: str | os.PathLike[str], texts: Sequence[str]) -> list[str]:
    """Findings, one per file, for every file under `folder` that contains a private record.

    Each record of >= MIN_WORDS words is looked for as a whole, whitespace-normalised, exact
    substring. An index of word trigrams makes this linear in the corpus: a record can only
    occur where its interior words (the first and last may be glued to punctuation) occur. A
    finding names the file (and the line where one occurs first), never the record, its text or
    how many records were found.
    """
    root = Path(folder)
    findings: list[str] = []
    wanted: dict[tuple[str, ...], list[int]] = {}
    norm_texts = [_norm(t) for t in texts]
    for i, t in enumerate(norm_texts):
        words = t.split(" ")
        if len(words) >= MIN_WORDS:
            wanted.setdefault(tuple(words[1:4]), []).append(i)
    for path in released_files(root):
        hay = "\n".join(_norm(p) for p in _readable(path))
        toks = hay.split()
        hit = next(
            (
                i
                for j in range(len(toks) - 2)
                for i in wanted.get((toks[j], toks[j + 1], toks[j + 2]), ())
                if norm_texts[i] in hay
            ),
            None,
        )
        if hit is not None:
            line = _first_line(path, norm_texts[hit])
            where = f" (first at line {line})" if line is not None else ""
            findings.append(
                f"{path.relative_to(root)}: contains a private record verbatim{where}; "
                "nothing may be released that copies private text"
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

    With one class the clean count is N, the number of private records, which is not published
    either: a mapping {class: N} or a list [N] is a finding too. A finding names where the
    numbers are, never the numbers."""
    if not class_names or len(class_names) != len(counts):
        return []
    root = Path(folder)
    findings = []
    for path in released_files(root):
        for d, doc in enumerate(_parsed(path, _raw(path))):
            for node, where in _walk(doc, f"{path.relative_to(root)}#{d}"):
                if isinstance(node, dict) and set(class_names) <= set(node):
                    values = [node[c] for c in class_names]
                elif isinstance(node, list):
                    values = node
                else:
                    continue
                if _numbers_equal(values, counts):
                    findings.append(f"{where}: equals the clean class counts")
    return findings


def find_private_artefacts(folder: Path, seed: int | None) -> list[str]:
    """Findings for anything from the PRIVATE folder: its paths, caches, the noise seed."""
    findings = []
    for path in released_files(folder):
        rel = path.relative_to(folder)
        if any(part.endswith(PRIVATE_MARK) for part in rel.parts) or PRIVATE_MARK in path.name:
            findings.append(f"{rel}: a PRIVATE-folder path")
        if path.suffix in _PRIVATE_SUFFIXES or "private-embeddings" in path.name:
            findings.append(f"{rel}: a binary / embedding cache file")
        if path.name == "noise_seed.json":
            findings.append(f"{rel}: the noise seed file")
        searchable = seed is not None and len(str(abs(seed))) >= _SEED_MIN_DIGITS
        if searchable and str(abs(seed)) in _raw(path):  # type: ignore[arg-type]
            findings.append(f"{rel}: contains the noise seed")
    s = (RunFolder.open(folder).config().get("privacy") or {}).get("noise_seed")
    if s not in (None, "<redacted>"):
        findings.append(f"{CONFIG}: privacy.noise_seed is not redacted")
    return findings


# ---- machine paths -----------------------------------------------------------------------------
def machine_paths(
    run: Path, dest: Path, private_dir: Path, cfg: Mapping[str, Any]
) -> dict[str, str]:
    """{absolute path: what it is} of this machine that no released file may contain: the run folder
    and its parent (where the request cache sits by default), the PRIVATE folder, the private
    data, the request cache, OUT's parent, the home, working and temporary folders, Python's."""
    data = (cfg.get("data") or {}).get("path")
    cache = (cfg.get("generation") or {}).get("cache_path")
    found: dict[str, Path] = {
        "the run folder": run,
        "the run folder's parent": run.resolve().parent,
        "the PRIVATE folder": private_dir,
        "the release folder's parent": dest.resolve().parent,
        "the working folder": Path.cwd(),
        "the temporary folder": Path(tempfile.gettempdir()),
        "the Python environment": Path(sys.prefix),
    }
    try:
        found["the home folder"] = Path.home()
    except RuntimeError:
        pass
    if isinstance(data, str) and data:
        found["the private data"] = Path(data).expanduser()
        found["the private data's folder"] = Path(data).expanduser().parent
    if isinstance(cache, str) and cache:
        found["the request cache"] = Path(cache).expanduser().parent
    out: dict[str, str] = {}
    for what, path in found.items():
        for form in (str(path), str(path.resolve())):
            form = form.rstrip("/")
            if form.startswith("/"):
                out.setdefault(form, what)
    return dict(sorted(out.items(), key=lambda kv: -len(kv[0])))


def find_machine_paths(folder: str | os.PathLike[str], paths: Mapping[str, str]) -> list[str]:
    """Findings for every file whose contents (raw or decoded) hold ".PRIVATE" or one of the
    absolute `paths` ({path: what it is}, see `machine_paths`) as a whole path component."""
    root = Path(folder)
    patterns = [
        (what, re.compile(rf"(?<![\w.\-]){re.escape(p)}(?![\w\-]|\.\w)"))
        for p, what in paths.items()
    ]
    findings = []
    for path in released_files(root):
        rel = path.relative_to(root)
        hay = "\n".join(_readable(path))
        if PRIVATE_MARK in hay:
            findings.append(f"{rel}: its contents mention a PRIVATE folder ('{PRIVATE_MARK}')")
        for what, pattern in patterns:
            if pattern.search(hay):
                findings.append(f"{rel}: contains an absolute path of this machine ({what})")
                break
    return findings
