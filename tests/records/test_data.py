"""Reading the private dataset: every format, classes, users, and each bad input's message."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from augpe.config import DataConfig
from augpe.errors import BackendError, ConfigError, DataError
from augpe.records.data import PrivateData, load_private_data, read_table

ROWS: list[dict[str, Any]] = [
    {"text": "  Great pasta, friendly staff. ", "category": "Food", "rating": 5, "user": "u2"},
    {"text": "The soup was cold.", "category": "Food", "rating": 2, "user": "u1"},
    {"text": "Fast delivery.", "category": "Service", "rating": 5, "user": "u1"},
    {"text": "   ", "category": "Service", "rating": 1, "user": "u3"},
    {"text": "Waited an hour for a table.", "category": "Service", "rating": 1, "user": "u3"},
    {"text": "Best tiramisu in town.", "category": "Food", "rating": 5, "user": "u2"},
]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def load(path: Path | str, **kw: Any) -> PrivateData:
    return load_private_data(DataConfig(path=str(path), **kw))


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# --- formats -------------------------------------------------------------------------------


@pytest.fixture(params=["csv", "jsonl", "parquet", "hf"])
def any_format(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    fmt = request.param
    if fmt == "csv":
        return write_csv(tmp_path / "reviews.csv", ROWS)
    if fmt == "jsonl":
        return write_jsonl(tmp_path / "reviews.jsonl", ROWS)
    if fmt == "parquet":
        path = tmp_path / "reviews.parquet"
        pd.DataFrame(ROWS).to_parquet(path)
        return path
    import datasets

    path = tmp_path / "reviews_hf"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(path))
    return path


def test_every_format_gives_the_same_records_and_writes_nothing(any_format: Path) -> None:
    before = tree(any_format.parent)
    data = load(any_format, label_columns=["category", "rating"], user_column="user")

    assert data.texts == [
        "Great pasta, friendly staff.",
        "The soup was cold.",
        "Fast delivery.",
        "Waited an hour for a table.",
        "Best tiramisu in town.",
    ]
    assert data.dropped_empty == 1
    assert data.class_names == ["Food | 2", "Food | 5", "Service | 1", "Service | 5"]
    assert data.class_labels[1] == {"category": "Food", "rating": "5"}
    assert data.class_ids.dtype == np.int64
    assert data.class_ids.tolist() == [1, 0, 3, 2, 1]
    assert data.user_ids is not None and data.user_ids.dtype == np.int64
    assert data.user_ids.tolist() == [1, 0, 0, 2, 1]  # u1 < u2 < u3, u3's empty text dropped
    assert data.label_columns == ["category", "rating"]
    assert data.source == str(any_format)
    assert tree(any_format.parent) == before


def test_fingerprint_is_the_same_across_formats(tmp_path: Path) -> None:
    a = load(write_csv(tmp_path / "a.csv", ROWS), label_columns=["rating"])
    b = load(write_jsonl(tmp_path / "b.jsonl", ROWS), label_columns=["rating"])
    assert a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 64


def test_fingerprint_changes_with_a_text_or_a_label(tmp_path: Path) -> None:
    base = load(write_jsonl(tmp_path / "a.jsonl", ROWS), label_columns=["rating"]).fingerprint()
    text_changed = [dict(r) for r in ROWS]
    text_changed[0]["text"] = "Great pasta!"
    label_changed = [dict(r) for r in ROWS]
    label_changed[1]["rating"] = 1
    t = load(write_jsonl(tmp_path / "b.jsonl", text_changed), label_columns=["rating"])
    lab = load(write_jsonl(tmp_path / "c.jsonl", label_changed), label_columns=["rating"])
    assert len({base, t.fingerprint(), lab.fingerprint()}) == 3


def test_explicit_format_overrides_the_extension(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "reviews.txt", ROWS)
    assert len(load(path, format="jsonl")) == 5


def test_json_array_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "reviews.json"
    path.write_text(json.dumps(ROWS), encoding="utf-8")
    assert len(load(path)) == 5


def test_hf_dataset_dict_uses_the_configured_split(tmp_path: Path) -> None:
    import datasets

    path = tmp_path / "dd"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(ROWS),
            "test": datasets.Dataset.from_list(ROWS[:2]),
        }
    ).save_to_disk(str(path))
    assert len(load(path)) == 5
    assert load(path, split="test").texts == ["Great pasta, friendly staff.", "The soup was cold."]
    with pytest.raises(
        DataError,
        match=r"split 'dev' \(setting data\.split\) not found; available splits: train, test",
    ):
        load(path, split="dev")


def test_read_table_returns_csv_cells_as_strings(tmp_path: Path) -> None:
    df = read_table(str(write_csv(tmp_path / "r.csv", ROWS)))
    assert df["rating"].tolist() == ["5", "2", "5", "1", "1", "5"]


# --- classes, users, cleaning ---------------------------------------------------------------


def test_no_label_columns_gives_one_class_named_all(tmp_path: Path) -> None:
    data = load(write_csv(tmp_path / "r.csv", ROWS))
    assert data.class_names == ["all"]
    assert data.class_labels == [{}]
    assert data.class_ids.tolist() == [0] * 5
    assert data.user_ids is None


def test_int_and_string_labels_are_the_same_class(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {"text": "a", "rating": 5},
        {"text": "b", "rating": "5"},
        {"text": "c", "rating": 5.0},
    ]
    data = load(write_jsonl(tmp_path / "r.jsonl", rows), label_columns=["rating"])
    assert data.class_names == ["5"]
    assert data.class_ids.tolist() == [0, 0, 0]


def test_float_labels_from_a_column_with_gaps_read_as_ints(tmp_path: Path) -> None:
    # Parquet stores an int column with a null as float; the dropped row's null must not matter.
    path = tmp_path / "r.parquet"
    pd.DataFrame({"text": ["a", "", "c"], "rating": [5, None, 4]}).to_parquet(path)
    data = load(path, label_columns=["rating"])
    assert data.class_names == ["4", "5"]
    assert data.dropped_empty == 1


def test_indices_of_and_len(tmp_path: Path) -> None:
    data = load(write_csv(tmp_path / "r.csv", ROWS), label_columns=["category"])
    assert len(data) == 5
    assert data.class_names == ["Food", "Service"]
    assert data.indices_of(0).tolist() == [0, 1, 4]
    assert data.indices_of(1).tolist() == [2, 3]
    assert data.indices_of(1).dtype == np.int64
    with pytest.raises(ValueError):
        data.indices_of(2)


def test_numbers_in_the_text_column_are_refused_and_nulls_dropped(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [{"text": None}, {"text": "ok"}, {"other": "no text key"}]
    data = load(write_jsonl(tmp_path / "r.jsonl", rows))
    assert data.texts == ["ok"]
    assert data.dropped_empty == 2
    with pytest.raises(DataError, match=r"column 'text' \(data\.text_column\) holds a number"):
        load(write_jsonl(tmp_path / "n.jsonl", [*rows, {"text": 42}]))


def test_csv_keeps_na_like_words_and_multiline_texts(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text('text\nNA\n"line one\nline two"\nnull\n', encoding="utf-8")
    assert load(path).texts == ["NA", "line one\nline two", "null"]


def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes("text,label\nCafé au lait,x\n".encode("utf-8-sig"))
    assert load(path, label_columns=["label"]).texts == ["Café au lait"]


def test_max_records_keeps_the_first_rows(tmp_path: Path) -> None:
    data = load(write_csv(tmp_path / "r.csv", ROWS), max_records=3)
    assert data.texts == ["Great pasta, friendly staff.", "The soup was cold.", "Fast delivery."]


# --- bad input -------------------------------------------------------------------------------


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=r"not found: .*nope\.csv.*data\.path"):
        load(path)


def test_missing_relative_path_is_not_taken_for_a_hub_name(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not found: \./nowhere/data"):
        load("./nowhere/data")


def test_unknown_extension_asks_for_data_format(tmp_path: Path) -> None:
    path = tmp_path / "r.tsv"
    path.write_text("text\na\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"r\.tsv.*data\.format"):
        load(path)


def test_folder_that_is_not_a_saved_dataset(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "x.csv").write_text("text\na\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"plain is a folder but not a dataset saved"):
        load(folder)


def test_unreadable_parquet_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match=r"cannot read Parquet file .*broken\.parquet"):
        load(path)


def test_unreadable_file_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_csv(tmp_path / "locked.csv", ROWS)

    def deny(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", deny)  # chmod 0 does not stop root
    with pytest.raises(DataError, match=r"cannot read .*locked\.csv: Permission denied"):
        load(path)


def test_non_utf8_csv_names_file_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("text\nfine\nCaf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(DataError) as err:
        load(path)
    msg = str(err.value)
    assert "latin1.csv" in msg and "not valid UTF-8" in msg
    assert "byte offset 13" in msg and "line 3" in msg and "0xe9" in msg


def test_non_utf8_jsonl_is_not_silently_replaced(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "caf\xff"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl is not valid UTF-8.*line 2"):
        load(path)


def test_malformed_jsonl_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "b"}\n{"text": "c",\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"r\.jsonl: malformed JSON on line 4"):
        load(path)


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"text": "a"}\n["b"]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"r\.jsonl: line 2 is not a JSON object"):
        load(path)


@pytest.mark.parametrize(
    ("kw", "column", "setting"),
    [
        ({"text_column": "body"}, "body", "data.text_column"),
        ({"label_columns": ["category", "stars"]}, "stars", "data.label_columns"),
        ({"user_column": "author"}, "author", "data.user_column"),
    ],
)
def test_unknown_column_names_the_setting_and_lists_columns(
    tmp_path: Path, kw: dict[str, Any], column: str, setting: str
) -> None:
    path = write_csv(tmp_path / "r.csv", ROWS)
    with pytest.raises(DataError) as err:
        load(path, **kw)
    msg = str(err.value)
    assert f"'{column}' ({setting}) not found" in msg
    assert "available columns: text, category, rating, user" in msg
    assert "r.csv" in msg


def test_missing_label_names_row_and_column_csv(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("text,category,rating\na,Food,5\nb,,4\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"r\.csv: row 2 has no value in column 'category'"):
        load(path, label_columns=["category", "rating"])


def test_missing_label_names_row_and_column_jsonl(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {"text": "a", "rating": 5},
        {"text": "b", "rating": 4},
        {"text": "c", "rating": None},
    ]
    path = write_jsonl(tmp_path / "r.jsonl", rows)
    with pytest.raises(
        DataError, match=r"row 3 has no value in column 'rating' \(data\.label_columns\)"
    ):
        load(path, label_columns=["rating"])


def test_missing_user_names_row_and_setting(tmp_path: Path) -> None:
    rows = [{"text": "a", "user": "u1"}, {"text": "b"}]
    path = write_jsonl(tmp_path / "r.jsonl", rows)
    with pytest.raises(
        DataError, match=r"row 2 has no value in column 'user' \(data\.user_column\)"
    ):
        load(path, user_column="user")


def test_list_label_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [{"text": "a", "tags": ["x", "y"]}])
    with pytest.raises(DataError, match=r"row 1, column 'tags'.*single value"):
        load(path, label_columns=["tags"])


def test_header_only_csv_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"r\.csv: the dataset has no records"):
        load(path)


@pytest.mark.parametrize("name", ["r.csv", "r.jsonl"])
def test_zero_byte_file_is_empty(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(DataError, match=rf"{name.replace('.', '[.]')}.*(empty|no records)"):
        load(path)


def test_all_texts_empty_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [{"text": "  "}, {"text": ""}, {"text": None}])
    with pytest.raises(DataError, match=r"r\.jsonl: every text in column 'text'"):
        load(path)


def test_small_class_names_neither_class_nor_count(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", ROWS)
    with pytest.raises(DataError) as err:
        load(path, label_columns=["category", "rating"], min_records_per_class=2)
    msg = str(err.value)
    assert "data.min_records_per_class = 2" in msg and "below the threshold" in msg
    assert "'category', 'rating'" in msg and str(path) in msg
    assert "Food" not in msg and "Service" not in msg and "1" not in msg.replace(str(path), "")
    assert len(load(path, label_columns=["category"], min_records_per_class=2)) == 5


def test_label_values_that_collide_as_names_are_an_error(tmp_path: Path) -> None:
    rows = [{"text": "a", "x": "p | q", "y": "r"}, {"text": "b", "x": "p", "y": "q | r"}]
    with pytest.raises(DataError, match=r"both read as class 'p \| q \| r'"):
        load(write_jsonl(tmp_path / "r.jsonl", rows), label_columns=["x", "y"])


def test_duplicate_label_column_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.label_columns"):
        load(write_csv(tmp_path / "r.csv", ROWS), label_columns=["rating", "rating"])


def test_unknown_format_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.format"):
        read_table(str(write_csv(tmp_path / "r.csv", ROWS)), fmt="xlsx")


def test_hf_without_datasets_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "hf"
    folder.mkdir()
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(BackendError, match=r"augpe\[hf\]"):
        load(folder)
