"""The classes of the private records: label values read one way, and the label set guarded.

A class is the combination of a record's values in `data.label_columns`, named by joining them
with `CLASS_SEP` ("Food | 5"). Class names are published (corpus, ledger, card), so the label set
is either the PUBLIC list `data.labels` (the classes are exactly that list, in that order, a class
with no records included), or read from the private data: then a warning says so, and values that
look like texts rather than labels are refused before anything is sent anywhere.

Label values are strings; numbers are normalised so one class never splits in two: 1, 1.0 and
"1" are the class "1" (an integer-valued float reads as the integer), a boolean reads as "True" /
"False". A column that holds a number and a text spelling the same number another way (1 and
"1.0") is an error: write every label the same way.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from augpe.config import DataConfig
from augpe.errors import ConfigError, DataError

__all__ = [
    "ALL_CLASS",
    "CLASS_SEP",
    "MANY_VALUES",
    "MAX_LABEL_CHARS",
    "check_label_settings",
    "decode_cell",
    "is_container",
    "is_missing",
    "label_values",
    "make_classes",
]

log = logging.getLogger("augpe")

ALL_CLASS = "all"
"""Name of the single class when no label columns are given."""

CLASS_SEP = " | "
"""Joins the label values of one class ("Food | 5"): the class name is read inside prompts."""

MAX_LABEL_CHARS = 64
"""A data-derived label value longer than this reads as a text, not a label: refused."""

MANY_VALUES = 20
"""A data-derived label column with at least this many distinct values, where more than half the
records hold a value no other record holds, reads as texts or ids, not labels: refused."""


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def is_container(value: Any) -> bool:
    return isinstance(value, (list, tuple, dict, set, np.ndarray))


def decode_cell(value: bytes, source: str, row: int, column: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{source}: row {row}, column '{column}' is not valid UTF-8 "
            f"(byte offset {err.start} in the cell)"
        ) from None


def check_label_settings(cfg: DataConfig) -> None:
    """Refusals of the label settings themselves, before the file is read."""
    if len(set(cfg.label_columns)) != len(cfg.label_columns):
        raise ConfigError(f"data.label_columns lists a column twice: {cfg.label_columns}")
    if cfg.text_column in cfg.label_columns:
        raise ConfigError(
            f"data.label_columns: '{cfg.text_column}' is the text column (data.text_column); the "
            "class names are published, so the private texts cannot be the labels"
        )
    if cfg.labels is None:
        return
    if not cfg.label_columns:
        raise ConfigError("data.labels is set but data.label_columns is empty: name the columns")
    if not cfg.labels:
        raise ConfigError("data.labels is empty: list every class, or leave it unset")
    if len(set(cfg.labels)) != len(cfg.labels):
        twice = sorted(n for n, c in Counter(cfg.labels).items() if c > 1)
        raise ConfigError(f"data.labels lists a class twice: {twice}")
    for name in cfg.labels:
        if len(name.split(CLASS_SEP)) != len(cfg.label_columns):
            raise ConfigError(
                f"data.labels: '{name}' is not {len(cfg.label_columns)} value(s) joined by "
                f"'{CLASS_SEP}' (one per column of data.label_columns: {cfg.label_columns})"
            )


def _number(value: Any) -> str | None:
    """The canonical text of a numeric value (1.0 -> "1"), None if it is not a number."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return str(int(f)) if f.is_integer() else str(f)
    return None


def _label_value(value: Any, source: str, row: int, column: str, setting: str) -> str:
    """A label as a string (see the module docstring); missing values are errors."""
    if isinstance(value, bytes):
        value = decode_cell(value, source, row, column)
    if is_container(value):
        raise DataError(
            f"{source}: row {row}, column '{column}' ({setting}) holds a {type(value).__name__}; "
            "a label must be a single value"
        )
    if is_missing(value) or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{source}: row {row} has no value in column '{column}' ({setting})")
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    number = _number(value)
    return number if number is not None else str(value).strip()


def _check_one_spelling(raw: list[Any], source: str, column: str, setting: str) -> None:
    """Refuse a column where a number and a text spell the same number differently (1, "1.0")."""
    numbers = {n for v in raw if (n := _number(v)) is not None}
    if not numbers:
        return
    for v in raw:
        if not isinstance(v, str):
            continue
        try:
            f = float(v)
        except ValueError:
            continue
        text = v.strip()
        if math.isfinite(f) and text != (n := _number(f)) and n in numbers:
            raise DataError(
                f"{source}: column '{column}' ({setting}) holds numbers and texts that spell the "
                'same number another way (such as 1 and "1.0"), which would split one class in '
                "two; write every label of the column the same way"
            )


def label_values(
    df: pd.DataFrame, columns: Sequence[str], keep: list[int], source: str, setting: str
) -> list[tuple[str, ...]]:
    """Each kept row's values in `columns`, as label strings."""
    cols = [df[c].tolist() for c in columns]
    for c, col in zip(columns, cols):
        _check_one_spelling([col[i] for i in keep], source, c, setting)
    return [
        tuple(_label_value(col[i], source, i + 1, c, setting) for c, col in zip(columns, cols))
        for i in keep
    ]


def make_classes(
    label_rows: list[tuple[str, ...]],
    label_columns: list[str],
    source: str,
    labels: list[str] | None = None,
    rows: Sequence[int] | None = None,
) -> tuple[list[str], list[dict[str, str]], np.ndarray]:
    """(class names, each class's value per column, each record's class id). With `labels` (the
    public data.labels), the classes are that list in its order; `rows` are the records' row
    numbers in the file, for the error naming a record outside it."""
    if not label_columns:
        return [ALL_CLASS], [{}], np.zeros(len(label_rows), dtype=np.int64)
    if labels is not None:
        return _public_classes(label_rows, label_columns, source, labels, rows)
    _refuse_text_like(label_rows, label_columns, source)
    log.warning(
        "data.labels is not set: the class names are read from the private data (column(s) %s "
        "of %s) and published as they are (corpus, ledger, dataset card): the label set is "
        "data-derived and not protected by the DP guarantee; list the public label set in "
        "data.labels to protect it",
        ", ".join(f"'{c}'" for c in label_columns),
        source,
    )
    by_name: dict[str, tuple[str, ...]] = {}
    for values in set(label_rows):
        name = CLASS_SEP.join(values)
        other = by_name.setdefault(name, values)
        if other != values:
            raise DataError(
                f"{source}: label combinations {list(other)} and {list(values)} both read as "
                f"class '{name}'; a label value contains '{CLASS_SEP.strip()}'"
            )
    names = sorted(by_name)
    class_labels = [dict(zip(label_columns, by_name[n])) for n in names]
    id_of = {by_name[n]: k for k, n in enumerate(names)}
    class_ids = np.array([id_of[v] for v in label_rows], dtype=np.int64)
    return names, class_labels, class_ids


def _public_classes(
    label_rows: list[tuple[str, ...]],
    label_columns: list[str],
    source: str,
    labels: list[str],
    rows: Sequence[int] | None,
) -> tuple[list[str], list[dict[str, str]], np.ndarray]:
    parts = [tuple(name.split(CLASS_SEP)) for name in labels]
    id_of = {p: k for k, p in enumerate(parts)}
    allowed = [{p[j] for p in parts} for j in range(len(label_columns))]
    ids = np.empty(len(label_rows), dtype=np.int64)
    for i, values in enumerate(label_rows):
        k = id_of.get(values)
        if k is None:  # the value may be private: name the column and the setting, not the value
            row = f"row {rows[i] + 1}" if rows is not None else f"record {i + 1}"
            bad = [c for j, c in enumerate(label_columns) if values[j] not in allowed[j]]
            where = (
                f"column '{bad[0]}' holds a value"
                if bad
                else f"columns {', '.join(repr(c) for c in label_columns)} hold a combination"
            )
            raise DataError(
                f"{source}: {row}, {where} not in data.labels (data.label_columns); add the "
                "class to data.labels or fix the record"
            )
        ids[i] = k
    return list(labels), [dict(zip(label_columns, p)) for p in parts], ids


def _refuse_text_like(
    label_rows: list[tuple[str, ...]], label_columns: list[str], source: str
) -> None:
    """Refuse a data-derived label column whose values look like texts or ids (module docstring).

    Rule: a value longer than MAX_LABEL_CHARS characters, or at least MANY_VALUES distinct values
    with more than half of the records holding a value no other record holds. The message names
    the column and the rule, never a value or a count."""
    n = len(label_rows)
    for j, column in enumerate(label_columns):
        counts = Counter(r[j] for r in label_rows)
        if any(len(v) > MAX_LABEL_CHARS for v in counts):
            why = f"some of its values are longer than {MAX_LABEL_CHARS} characters"
        elif len(counts) >= MANY_VALUES and 2 * sum(c == 1 for c in counts.values()) > n:
            why = "most records hold a value that no other record holds"
        else:
            continue
        raise DataError(
            f"{source}: column '{column}' (data.label_columns) looks like texts or ids, not "
            f"labels: {why}. Class names are published as they are, so a private value would be "
            "released; set data.labels to the public list of classes, or pick a label column"
        )
