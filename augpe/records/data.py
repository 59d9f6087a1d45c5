"""Reading the private dataset: one table in, one validated `PrivateData` out.

This is the only module that touches the raw private file. It is strict on purpose: a wrongly
decoded byte, a silently merged class or a dropped row would change what the DP vote sees, so
every problem is an error that names the file, row or setting to fix. Nothing is written to disk.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augpe.config import DataConfig
from augpe.errors import ConfigError, DataError, missing_dependency
from augpe.records.labels import (
    ALL_CLASS,
    CLASS_SEP,
    check_label_settings,
    decode_cell,
    is_container,
    is_missing,
    label_values,
    make_classes,
)

_FORMATS = ("auto", "csv", "jsonl", "parquet", "hf")
_EXTENSIONS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass(frozen=True, eq=False)
class PrivateData:
    """The private records after cleaning; every array is aligned with `texts`."""

    texts: list[str]
    class_ids: np.ndarray
    class_names: list[str]
    label_columns: list[str]
    class_labels: list[dict[str, str]]
    user_ids: np.ndarray | None
    source: str
    dropped_empty: int
    labels_public: bool = False
    """Whether the class names come from the public data.labels (or there are no label columns),
    rather than from the private data (then they are published outside the DP guarantee)."""

    def __post_init__(self) -> None:
        n = len(self.texts)
        if len(self.class_ids) != n or (self.user_ids is not None and len(self.user_ids) != n):
            raise ValueError("texts, class_ids and user_ids must have the same length")
        if len(self.class_labels) != len(self.class_names):
            raise ValueError("class_labels must have one entry per class name")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @cached_property
    def _fingerprint(self) -> str:
        h = hashlib.sha256()
        # Length-prefixed fields, so no two different datasets can hash the same byte stream.
        h.update(len(self.class_names).to_bytes(8, "little"))
        for name in self.class_names:
            b = name.encode("utf-8")
            h.update(len(b).to_bytes(8, "little") + b)
        h.update(len(self.texts).to_bytes(8, "little"))
        for text, cid in zip(self.texts, self.class_ids.tolist()):
            b = text.encode("utf-8")
            h.update(int(cid).to_bytes(8, "little", signed=True) + len(b).to_bytes(8, "little") + b)
        return h.hexdigest()

    def fingerprint(self) -> str:
        """sha256 over the texts, their class ids and the class names: a cache key for private
        embeddings that changes whenever what the vote sees changes, whatever the file format."""
        return self._fingerprint

    def indices_of(self, class_id: int) -> np.ndarray:
        """Record indices (int64, ascending) of one class."""
        if not 0 <= class_id < len(self.class_names):
            raise ValueError(f"class id {class_id} out of range (0..{len(self.class_names) - 1})")
        return np.flatnonzero(self.class_ids == class_id).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Raw readers


def read_table(
    path: str, fmt: str = "auto", split: str = "train", setting: str = "data.path"
) -> pd.DataFrame:
    """Read a CSV / JSONL / Parquet file or a HF dataset into a DataFrame, without cleaning.

    CSV cells are read as strings (an empty cell is ""), so label values are never re-typed.
    Text files must be UTF-8; invalid bytes are an error, never replaced.
    """
    if fmt not in _FORMATS:
        raise ConfigError(f"data.format: unknown format '{fmt}'; use one of {', '.join(_FORMATS)}")
    kind = _detect_format(path) if fmt == "auto" else fmt
    if kind == "hf":
        return _read_hf(path, split)
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file not found: {path} (setting {setting})")
    if p.is_dir():
        raise DataError(f"{path} is a folder, but data.format is '{kind}'; it must be a file")
    if kind == "parquet":
        return _read_parquet(p)
    text = _read_utf8(p)
    if kind == "csv":
        return _parse_csv(text, path)
    return _parse_jsonl(text, path)


def _detect_format(path: str) -> str:
    p = Path(path)
    if p.is_dir():
        return "hf"
    ext = p.suffix.lower()
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    if p.exists():
        raise DataError(
            f"cannot tell the format of {path} from its extension '{ext}'; "
            "set data.format to csv, jsonl, parquet or hf"
        )
    if _looks_like_hub_name(path):
        return "hf"
    raise DataError(f"data file not found: {path} (setting data.path)")


def _looks_like_hub_name(path: str) -> bool:
    """'imdb' or 'org/name'; anything that looks like a local path is not."""
    if path.startswith(("/", ".", "~")) or "\\" in path or path.count("/") > 1:
        return False
    return bool(path.strip()) and not any(c.isspace() for c in path)


def _read_utf8(p: Path) -> str:
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {p}: {err.strerror or err}") from err
    try:
        return raw.decode("utf-8-sig")  # strict: a BOM is allowed, bad bytes are not
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        bad = raw[err.start : err.start + 1].hex()
        raise DataError(
            f"{p} is not valid UTF-8: byte 0x{bad} at byte offset {err.start} (line {line}); "
            "re-save the file as UTF-8"
        ) from None


def _parse_csv(text: str, path: str) -> pd.DataFrame:
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty (no header row)") from None
    except (pd.errors.ParserError, ValueError) as err:
        raise DataError(f"cannot parse CSV file {path}: {err}") from None


def _parse_jsonl(text: str, path: str) -> pd.DataFrame:
    stripped = text.lstrip()
    if stripped.startswith("["):  # a .json file holding one array of objects
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: malformed JSON at line {err.lineno}: {err.msg}") from None
        records: list[dict[str, Any]] = []
        for i, obj in enumerate(items, start=1):
            if not isinstance(obj, dict):
                raise DataError(f"{path}: item {i} of the JSON array is not an object")
            records.append(obj)
        return pd.DataFrame.from_records(records) if records else pd.DataFrame()
    records = jsonl_records(text, path)
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def jsonl_records(text: str, path: str | Path) -> list[dict[str, Any]]:
    """One JSON object per non-blank line; errors name the file and the line."""
    records: list[dict[str, Any]] = []
    # split("\n"), not splitlines(): U+2028 and friends are legal inside JSON strings.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: malformed JSON on line {lineno}: {err.msg}") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}: line {lineno} is not a JSON object")
        records.append(obj)
    return records


def _read_parquet(p: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(p)
    except Exception as err:  # noqa: BLE001 - pyarrow raises many unrelated types
        raise DataError(f"cannot read Parquet file {p}: {err}") from None


def _read_hf(path: str, split: str) -> pd.DataFrame:
    try:
        import datasets
    except ImportError:
        raise missing_dependency("datasets", "hf") from None
    if Path(path).is_dir():
        try:
            ds: Any = datasets.load_from_disk(path)
        except Exception as err:  # noqa: BLE001 - datasets raises many unrelated types
            raise DataError(
                f"{path} is a folder but not a dataset saved with datasets.save_to_disk: {err}"
            ) from None
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise DataError(
                    f"{path}: split '{split}' (setting data.split) not found; "
                    f"available splits: {', '.join(ds.keys())}"
                )
            ds = ds[split]
    else:
        try:
            ds = datasets.load_dataset(path, split=split)
        except Exception as err:  # noqa: BLE001 - datasets raises many unrelated types
            raise DataError(
                f"cannot load '{path}' (split '{split}') from the Hugging Face hub, and it is not "
                f"a local file or folder (setting data.path): {err}"
            ) from None
    frame = ds.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    return frame


# --------------------------------------------------------------------------------------------
# Cleaning


def load_private_data(cfg: DataConfig) -> PrivateData:
    """Read, clean and validate the private records named by `cfg`.

    Errors name the file, the column and the setting; none holds a private text, a label value
    read from the file or a count of private records."""
    check_label_settings(cfg)
    source = cfg.path
    df = read_table(cfg.path, cfg.format, cfg.split)
    if cfg.max_records is not None:
        df = df.iloc[: cfg.max_records]
    _check_columns(df, _wanted_columns(cfg), source)
    if len(df) == 0:
        raise DataError(f"{source}: the dataset has no records")

    raw_texts = df[cfg.text_column].tolist()
    keep, texts = _clean_texts(raw_texts, source, cfg.text_column)
    dropped = len(raw_texts) - len(texts)
    if not texts:
        raise DataError(
            f"{source}: every text in column '{cfg.text_column}' (data.text_column) is empty"
        )

    label_rows = label_values(df, cfg.label_columns, keep, source, "data.label_columns")
    class_names, class_labels, class_ids = make_classes(
        label_rows, cfg.label_columns, source, cfg.labels, keep
    )

    counts = np.bincount(class_ids, minlength=len(class_names))
    if (counts < cfg.min_records_per_class).any():  # no name, no count: each is a non-DP release
        raise DataError(
            f"{source}: a class of column(s) {', '.join(repr(c) for c in cfg.label_columns)} "
            f"(data.label_columns) is below the threshold data.min_records_per_class = "
            f"{cfg.min_records_per_class}; merge small classes or lower the setting (0 keeps "
            "a class of data.labels that has no records)"
        )

    user_ids = None
    if cfg.user_column is not None:
        users = [
            r[0] for r in label_values(df, [cfg.user_column], keep, source, "data.user_column")
        ]
        index = {u: k for k, u in enumerate(sorted(set(users)))}
        user_ids = np.array([index[u] for u in users], dtype=np.int64)

    return PrivateData(
        texts=texts,
        class_ids=class_ids,
        class_names=class_names,
        label_columns=list(cfg.label_columns),
        class_labels=class_labels,
        user_ids=user_ids,
        source=source,
        dropped_empty=dropped,
        labels_public=cfg.labels is not None or not cfg.label_columns,
    )


def load_public_seed(cfg: DataConfig, class_names: list[str]) -> list[tuple[str, int]]:
    """The texts of `cfg.public_seed` with their class ids, in file order.

    Public data: the same text and label columns as the private data, each row's class one of the
    private data's classes (an unknown one is an error naming the row); empty texts are dropped.
    """
    source = cfg.public_seed
    if source is None:
        return []
    df = read_table(source, "auto", cfg.split, setting="data.public_seed")
    _check_columns(df, _wanted_columns(cfg, users=False), f"{source} (data.public_seed)")
    keep, texts = _clean_texts(df[cfg.text_column].tolist(), source, cfg.text_column)
    rows = label_values(df, cfg.label_columns, keep, source, "data.label_columns")
    id_of = {name: c for c, name in enumerate(class_names)}
    out = []
    for i, text, values in zip(keep, texts, rows):
        name = CLASS_SEP.join(values) if cfg.label_columns else ALL_CLASS
        if name not in id_of:
            raise DataError(
                f"{source} (data.public_seed): row {i + 1} has class '{name}', which is not a "
                f"class of the private data ({', '.join(class_names)})"
            )
        out.append((text, id_of[name]))
    if not out:
        raise DataError(f"{source} (data.public_seed): no text in column '{cfg.text_column}'")
    return out


def _wanted_columns(cfg: DataConfig, users: bool = True) -> list[tuple[str, str]]:
    """(column, the setting that names it) for each column a data file must have."""
    wanted: list[tuple[str, str]] = [(cfg.text_column, "data.text_column")]
    wanted += [(c, "data.label_columns") for c in cfg.label_columns]
    if users and cfg.user_column is not None:
        wanted.append((cfg.user_column, "data.user_column"))
    return wanted


def _check_columns(df: pd.DataFrame, wanted: list[tuple[str, str]], source: str) -> None:
    available = [str(c) for c in df.columns]
    shown = ", ".join(available) if available else "(none)"
    for column, setting in wanted:
        if column not in df.columns:
            if len(df) == 0 and not available:
                raise DataError(f"{source}: the dataset has no records")
            raise DataError(
                f"{source}: column '{column}' ({setting}) not found; available columns: {shown}"
            )


def _clean_texts(values: list[Any], source: str, column: str) -> tuple[list[int], list[str]]:
    """(row indices kept, their cleaned texts): empty, whitespace-only and missing texts dropped."""
    keep: list[int] = []
    texts: list[str] = []
    for i, value in enumerate(values):
        text = _clean_text(value, source, i + 1, column)
        if text:
            keep.append(i)
            texts.append(text)
    return keep, texts


def _clean_text(value: Any, source: str, row: int, column: str) -> str:
    """The stripped text; "" (dropped) for empty, whitespace-only or missing values."""
    if is_missing(value):
        return ""
    if isinstance(value, bytes):
        value = decode_cell(value, source, row, column)
    elif not isinstance(value, str):  # a number would become the text "0", "1", ...
        if isinstance(value, (int, float, np.number)):
            kind = "a number"
        elif is_container(value):
            kind = "a list or mapping"
        else:
            kind = f"a value of type {type(value).__name__}"
        raise DataError(
            f"{source}: row {row}, column '{column}' (data.text_column) holds {kind}, not a "
            "text; the text column must hold strings (pick the right column)"
        )
    return value.strip()
