"""`augpe release RUN_DIR OUT --format jsonl|csv|parquet|hf`: a release people load directly.

`augpe.release.verify.release` decides *what* may leave a run folder (an allow-list, verified against
the private data). This module only changes the *shape* of what leaves: it builds the release in a
staging folder with `release`, converts the released corpus into a table (`text` plus one column
per label, nothing else) in the asked format, writes the dataset card (`augpe.release.card`), and then
runs the same private-record and class-count scans again over everything it added.

Binary formats need care: a Parquet page is compressed and an Arrow buffer holds all texts glued
together, so a raw byte search could miss a record. Every table written here is therefore read back
with its own reader (pandas for CSV, pyarrow for Parquet and Arrow) and dumped as JSONL into a
scratch folder that the scan reads too; a finding there names the file it came from. CSV is
decoded the same way (its quoting doubles every '"', which would hide a record from a raw search).

The files it adds are scanned for machine paths and ".PRIVATE" too, and everything in OUT gets the
one release timestamp (`augpe.release.staging`). Any finding aborts the release and leaves OUT
untouched, as `release` does.

Layout of OUT (besides the allow-listed files of `release`, synthetic.jsonl included):
  jsonl (default)  nothing more: synthetic.jsonl as today
  csv              data/train.csv
  parquet          data/train.parquet
  hf               the `datasets.Dataset.save_to_disk` files at the top of OUT, so that
                   `datasets.load_from_disk(OUT)` works
and README.md, the dataset card, in every format.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from augpe.errors import AugpeError, missing_dependency
from augpe.release.card import card_counts, write_card
from augpe.release.scan import find_machine_paths, machine_paths
from augpe.release.staging import staging
from augpe.release.table import (
    DATA_FILES,
    FORMATS,
    WEIGHT_COLUMN,
    ExportTable,
    read_released_corpus,
)
from augpe.release.verify import (
    ReleaseError,
    find_class_counts,
    private_reference,
    publish,
    refusal,
    release,
    scan_for_private,
)
from augpe.runner.layout import RunFolder, inside

__all__ = [
    "DATA_FILES",
    "FORMATS",
    "ExportTable",
    "read_released_corpus",
    "release_dataset",
    "table_views",
    "verify_release",
    "write_table",
]


def _arrow_type(column: str) -> Any:
    import pyarrow as pa

    return pa.float64() if column == WEIGHT_COLUMN else pa.string()


# ---- writers ---------------------------------------------------------------------------------
def _write_jsonl(table: ExportTable, folder: Path) -> list[Path]:
    return []  # synthetic.jsonl is already among the released files


def _write_csv(table: ExportTable, folder: Path) -> list[Path]:
    import pandas as pd

    path = folder / DATA_FILES["csv"]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(table.columns, dtype=str).to_csv(path, index=False, encoding="utf-8")
    return [path]


def _write_parquet(table: ExportTable, folder: Path) -> list[Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / DATA_FILES["parquet"]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table({k: pa.array(v, _arrow_type(k)) for k, v in table.columns.items()}), path
    )
    return [path]


def _write_hf(table: ExportTable, folder: Path) -> list[Path]:
    try:
        import datasets
    except ImportError:
        raise missing_dependency("datasets", "hf") from None
    before = {p for p in folder.rglob("*") if p.is_file()}
    features = datasets.Features(
        {k: datasets.Value("float64" if k == WEIGHT_COLUMN else "string") for k in table.columns}
    )
    ds = datasets.Dataset.from_dict(table.columns, features=features)
    ds.save_to_disk(str(folder))
    return sorted(p for p in folder.rglob("*") if p.is_file() and p not in before)


WRITERS: dict[str, Callable[[ExportTable, Path], list[Path]]] = {
    "jsonl": _write_jsonl,
    "csv": _write_csv,
    "parquet": _write_parquet,
    "hf": _write_hf,
}
"""`--format` -> the writer of the table into OUT (a new format: a writer and a line here)."""


def write_table(table: ExportTable, folder: Path, fmt: str) -> list[Path]:
    """Write `table` into `folder` in format `fmt`; returns the files written (jsonl: none)."""
    if fmt not in WRITERS:
        raise AugpeError(f"unknown release format {fmt!r}; use one of {', '.join(FORMATS)}")
    return WRITERS[fmt](table, folder)


# ---- decoded views for the scan ----------------------------------------------------------------
def _read_back(path: Path) -> dict[str, list[Any]] | None:
    """The columns of a table file, read with the format's own reader (None: not a table)."""
    if path.suffix == ".csv":
        import pandas as pd

        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        return {str(c): df[c].tolist() for c in df.columns}
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return dict(pq.read_table(path).to_pydict())
    if path.suffix == ".arrow":
        import pyarrow as pa

        with open(path, "rb") as f:
            try:
                t = pa.ipc.open_stream(f).read_all()
            except pa.ArrowInvalid:
                f.seek(0)
                t = pa.ipc.open_file(f).read_all()
        return dict(t.to_pydict())
    return None


def table_views(folder: Path, views: Path) -> dict[str, str]:
    """Dump every table file under `folder` (CSV, Parquet, Arrow) as JSONL under `views`, one
    object per row, so the text scans read what a loader would; returns {view name: file}."""
    names: dict[str, str] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        cols = _read_back(path)
        if cols is None:
            continue
        rel = str(path.relative_to(folder))
        view = views / (rel + ".decoded.jsonl")
        view.parent.mkdir(parents=True, exist_ok=True)
        n = max((len(v) for v in cols.values()), default=0)
        with open(view, "w", encoding="utf-8") as f:
            for i in range(n):
                row = {k: (None if v[i] is None else str(v[i])) for k, v in cols.items()}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        names[str(view.relative_to(views))] = rel
    return names


def verify_release(
    folder: str | os.PathLike[str],
    texts: Sequence[str],
    class_names: Sequence[str] = (),
    counts: Sequence[int] = (),
    extra_counts: dict[str, dict[str, int]] | None = None,
    paths: Mapping[str, str] | None = None,
) -> list[str]:
    """The release scans (`scan_for_private`, `find_class_counts`) over `folder` as it is on disk
    and over every table in it as its loader reads it (decoded into a scratch folder, deleted
    after). `extra_counts` adds mappings to check for the clean counts (e.g. the card's sizes);
    `paths` ({absolute path: what}, `augpe.release.scan.machine_paths`) adds the scan for machine
    paths and ".PRIVATE" in the files' contents."""
    stage = Path(folder)
    with tempfile.TemporaryDirectory(prefix=".augpe-views.") as tmp:
        views = Path(tmp)
        names = table_views(stage, views)
        for name, mapping in (extra_counts or {}).items():
            (views / name).parent.mkdir(parents=True, exist_ok=True)
            (views / name).write_text(json.dumps(mapping), encoding="utf-8")
            names[name] = name
        findings = scan_for_private(stage, texts) + find_class_counts(stage, class_names, counts)
        if paths is not None:
            findings += find_machine_paths(stage, paths)
        for line in scan_for_private(views, texts) + find_class_counts(views, class_names, counts):
            view, _, rest = line.partition(":")
            key = view.split("#", 1)[0]
            where = names.get(key, key) + view[len(key) :]
            findings.append(f"{where} (as read by its loader):{rest}")
    return findings


# ---- the release -----------------------------------------------------------------------------
def _check_destination(run: Path, dest: Path) -> Path:
    """What `release` checks of its OUT, for the final OUT (release itself sees a staging path);
    returns the run's PRIVATE folder."""
    if inside(dest, run) or inside(run, dest):
        raise ReleaseError(
            f"release folder {dest} must lie outside the run folder {run} (and not contain it)"
        )
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ReleaseError(f"release folder {dest} already exists and is not empty; pick a new one")
    private_dir = RunFolder.open(run).layout.private
    if inside(dest, private_dir):
        raise ReleaseError(f"release folder {dest} lies inside the PRIVATE folder {private_dir}")
    return private_dir


def release_dataset(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    fmt: str = "jsonl",
    *,
    include_state: bool = False,
    private_data: str | None = None,
    private_texts: Iterable[str] | None = None,
    allow_non_private: bool = False,
    card: bool = True,
    license: str = "other",
    command: str | None = None,
) -> list[Path]:
    """`release` (allow-list, verified), plus the corpus as a table in `fmt` and the dataset card,
    verified again; returns every file written, under `out`. Raises ReleaseError on any finding
    (OUT is then left as it was)."""
    if fmt not in FORMATS:
        raise ReleaseError(f"unknown release format {fmt!r}; use one of {', '.join(FORMATS)}")
    run, dest = Path(run_dir), Path(out)
    private_dir = _check_destination(run, dest)
    texts_in = list(private_texts) if private_texts is not None else None
    with staging(dest, "export") as work:
        stage = work / "release"
        try:
            release(
                run,
                stage,
                include_state,
                private_data=private_data,
                private_texts=texts_in,
                allow_non_private=allow_non_private,
            )
        except ReleaseError as err:  # name OUT, never the staging folder
            raise ReleaseError(str(err).replace(str(stage), str(dest))) from None
        table = read_released_corpus(stage)
        write_table(table, stage, fmt)
        extra: dict[str, dict[str, int]] = {}
        if card:
            write_card(stage, fmt=fmt, license=license, command=command)
            extra["README.md.class_sizes.json"] = card_counts(stage)
        texts, names, counts = private_reference(run, private_data, texts_in)
        cfg = RunFolder.open(run).config()
        paths = machine_paths(run, dest, private_dir, cfg)
        findings = verify_release(stage, texts, names, counts, extra, paths)
        if findings:
            raise refusal(f"release of {run} ({fmt}) refused, nothing written to {dest}", findings)
        publish(stage, dest)
    return sorted(p for p in dest.rglob("*") if p.is_file())
