"""`augpe release --format`: each format loads with its standard loader, holds text + one column
per label and nothing else, and the release scan still refuses a private record in every format,
also where only the format's own reader can see it (compressed Parquet pages, Arrow buffers)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from fakes.pe import FakeLLM, HashEmbedder, private_rows, public_pool, small_config, write_jsonl

from augpe.cli import main
from augpe.config import Config
from augpe.records.data import load_private_data
from augpe.release.export import FORMATS, ExportTable, release_dataset, verify_release, write_table
from augpe.release.verify import ReleaseError, release, scan_for_private
from augpe.runner.compose import RunResult, run

datasets = pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, RunResult]:
    tmp = tmp_path_factory.mktemp("export")
    rows = [
        r for i, r in enumerate(private_rows(250, seed=3)) if r["label"] == "posclass" or i % 5 != 1
    ]
    data = write_jsonl(tmp / "private.jsonl", rows)
    cfg = small_config(data, tmp / "run", 2.0, pe={"output": "soft"})  # with a weight column
    return cfg, run(
        cfg, show_progress=False, llm=FakeLLM(public_pool(40)), embedder=HashEmbedder(64)
    )


def _expected(run_dir: Path) -> dict[str, list[str]]:
    """The corpus as the receiver should see it, read straight from synthetic.jsonl."""
    rows = [json.loads(x) for x in (run_dir / "synthetic.jsonl").read_text().splitlines() if x]
    out = {"text": [r["text"] for r in rows], "label": [r["labels"]["label"] for r in rows]}
    return out | ({"weight": [r["weight"] for r in rows]} if "weight" in rows[0] else {})


def _no_staging_left(out: Path) -> None:
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


# ---- round trips -----------------------------------------------------------------------------
def test_default_format_is_todays_release_plus_the_card(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    _, result = finished
    plain = release(result.run_dir, tmp_path / "plain")  # what `augpe release` wrote before
    files = release_dataset(result.run_dir, tmp_path / "out")
    names = sorted(str(p.relative_to(tmp_path / "out")) for p in files)
    assert names == sorted([*(str(p.relative_to(tmp_path / "plain")) for p in plain), "README.md"])
    assert {"synthetic.jsonl", "ledger.json", "config.yaml"} <= set(names)
    for p in plain:  # byte for byte
        assert (tmp_path / "out" / p.relative_to(tmp_path / "plain")).read_bytes() == p.read_bytes()
    _no_staging_left(tmp_path / "out")


def test_csv_round_trips_through_pandas(finished: tuple[Config, RunResult], tmp_path: Path) -> None:
    _, result = finished
    release_dataset(result.run_dir, tmp_path / "out", "csv")
    df = pd.read_csv(tmp_path / "out" / "data" / "train.csv")
    assert list(df.columns) == ["text", "label", "weight"]
    assert df.to_dict("list") == _expected(result.run_dir)


def test_parquet_round_trips_through_pandas_pyarrow_and_datasets(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    _, result = finished
    release_dataset(result.run_dir, tmp_path / "out", "parquet")
    path = tmp_path / "out" / "data" / "train.parquet"
    expected = _expected(result.run_dir)
    df = pd.read_parquet(path)
    assert list(df.columns) == ["text", "label", "weight"] and df.to_dict("list") == expected
    assert pq.read_table(path).to_pydict() == expected
    ds = datasets.load_dataset(
        "parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf-cache")
    )
    assert ds.column_names == ["text", "label", "weight"] and ds.to_dict() == expected


def test_hf_round_trips_through_load_from_disk(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    _, result = finished
    release_dataset(result.run_dir, tmp_path / "out", "hf")
    ds = datasets.load_from_disk(str(tmp_path / "out"))
    assert ds.column_names == ["text", "label", "weight"]
    assert ds.to_dict() == _expected(result.run_dir)
    assert (tmp_path / "out" / "README.md").is_file()  # the card sits beside the arrow files


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_load_dataset_of_the_release_folder_reads_the_table_the_card_names(
    finished: tuple[Config, RunResult], tmp_path: Path, fmt: str
) -> None:
    # (an hf release is a save_to_disk folder, which load_dataset refuses by design: load_from_disk)
    _, result = finished
    release_dataset(result.run_dir, tmp_path / "out", fmt)
    ds = datasets.load_dataset(
        str(tmp_path / "out"), split="train", cache_dir=str(tmp_path / "hf-cache")
    )
    expected = _expected(result.run_dir)
    if fmt == "jsonl":  # synthetic.jsonl as today: every field of the run's corpus
        assert ds["text"] == expected["text"]
        assert [x["label"] for x in ds["labels"]] == expected["label"]
    else:
        assert ds.to_dict() == expected


def test_no_column_but_text_the_labels_and_the_weight(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    _, result = finished  # output soft: a weight column
    for fmt in ("csv", "parquet", "hf"):
        release_dataset(result.run_dir, tmp_path / fmt, fmt)
    names = ["text", "label", "weight"]
    assert list(pd.read_csv(tmp_path / "csv" / "data" / "train.csv").columns) == names
    assert pq.read_schema(tmp_path / "parquet" / "data" / "train.parquet").names == names
    assert list(datasets.load_from_disk(str(tmp_path / "hf")).features) == names


# ---- the scan over converted files ------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_release_refuses_a_planted_private_record_in_every_format(
    finished: tuple[Config, RunResult], tmp_path: Path, fmt: str
) -> None:
    cfg, result = finished
    texts = load_private_data(cfg.data).texts
    run_copy = tmp_path / "run"
    shutil.copytree(result.run_dir, run_copy)
    with open(run_copy / "synthetic.jsonl", "a", encoding="utf-8") as f:
        row = {
            "id": "x",
            "text": f"Intro. {texts[17]} outro",
            "class": "posclass",
            "labels": {"label": "posclass"},
        }
        f.write(json.dumps(row) + "\n")
    with pytest.raises(ReleaseError, match="contains a private record verbatim"):
        release_dataset(run_copy, tmp_path / "out", fmt)
    assert not (tmp_path / "out").exists()
    _no_staging_left(tmp_path / "out")


def _table_with(record: str) -> ExportTable:
    # The record is neither the first nor the last text in sort order, so Parquet's min / max
    # statistics (kept uncompressed in the footer) do not hold it.
    texts = ["A synthetic review.", f"Intro. {record} outro", "Fine.", "Zucchini bread, fine."]
    return ExportTable(texts, {"label": ["posclass", "negclass", "posclass", "negclass"]})


@pytest.mark.parametrize(
    ("fmt", "data_file"),
    [
        ("csv", "data/train.csv"),
        ("parquet", "data/train.parquet"),
        ("hf", "data-00000-of-00001.arrow"),
    ],
)
def test_scan_reads_the_text_column_of_each_format(
    tmp_path: Path, fmt: str, data_file: str
) -> None:
    # A record with a quote (CSV doubles it) and enough text for Parquet to compress the page.
    record = 'she said "never again" and ' + " ".join(["the bread was stale"] * 8)
    folder = tmp_path / fmt
    folder.mkdir()
    write_table(_table_with(record), folder, fmt)
    found = verify_release(folder, ["an unrelated private record of six words", record])
    decoded = [f for f in found if f.startswith(f"{data_file} (as read by its loader): ")]
    assert len(decoded) == 1 and "contains a private record" in decoded[0], found
    assert verify_release(folder, ["an unrelated private record of six words"]) == []
    # The same folder without the record passes.
    clean = tmp_path / f"{fmt}-clean"
    clean.mkdir()
    write_table(_table_with("nothing private here at all"), clean, fmt)
    assert verify_release(clean, [record]) == []


def test_a_raw_byte_search_alone_would_miss_a_record_in_csv_or_compressed_parquet(
    tmp_path: Path,
) -> None:
    """Why the decoded views exist: CSV quoting doubles every '"', and a compressed Parquet page
    (zstd here, as any receiver's tool may rewrite it) hides the text from a byte search."""
    import pyarrow as pa

    record = 'she said "never again" and ' + " ".join(["the bread was stale"] * 8)
    (tmp_path / "csv").mkdir()
    write_table(_table_with(record), tmp_path / "csv", "csv")
    (tmp_path / "pq").mkdir()
    t = _table_with(record)
    pq.write_table(pa.table(t.columns), tmp_path / "pq" / "x.parquet", compression="zstd")
    for folder in (tmp_path / "csv", tmp_path / "pq"):
        assert scan_for_private(folder, [record]) == [], folder.name
        assert verify_release(folder, [record]), folder.name


def test_verify_release_checks_the_card_sizes_against_the_clean_counts(tmp_path: Path) -> None:
    found = verify_release(
        tmp_path,
        [],
        ["negclass", "posclass"],
        [100, 125],
        extra_counts={"README.md.class_sizes.json": {"negclass": 100, "posclass": 125}},
    )
    assert found == [
        ("README.md.class_sizes.json#0 (as read by its loader): equals the clean class counts")
    ]


# ---- the command line ------------------------------------------------------------------------
def test_release_cli_format_parquet(
    finished: tuple[Config, RunResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, result = finished
    out = tmp_path / "out"
    assert main(["release", str(result.run_dir), str(out), "--format", "parquet"]) == 0
    printed = capsys.readouterr().out
    assert "released" in printed and "(parquet;" in printed and "train.parquet" in printed
    card = (out / "README.md").read_text()
    assert "released with `augpe release RUN_DIR OUT --format parquet`" in card
    assert main(["release", str(result.run_dir), str(out), "--format", "csv"]) == 2
    assert "not empty" in capsys.readouterr().err


def test_release_refuses_an_out_folder_that_is_the_run_or_inside_it(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    _, result = finished
    for bad in (result.run_dir, result.run_dir / "out", Path(str(result.run_dir) + ".PRIVATE")):
        with pytest.raises(ReleaseError):
            release_dataset(result.run_dir, bad, "csv")
    assert not (result.run_dir / "out").exists()


def test_a_soft_corpus_keeps_its_weight_column_in_every_format(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "private.jsonl", private_rows(200, seed=4))
    cfg = small_config(
        data, tmp_path / "run", 4.0, pe={"iterations": 2, "relabel": True, "output": "soft"}
    )
    result = run(cfg, show_progress=False, llm=FakeLLM(public_pool(40)), embedder=HashEmbedder(64))
    weights = [r["weight"] for r in result.samples]
    assert weights and min(weights) > 0
    release_dataset(result.run_dir, tmp_path / "pq", "parquet")
    df = pd.read_parquet(tmp_path / "pq" / "data" / "train.parquet")
    assert list(df.columns) == ["text", "label", "weight"] and df["weight"].tolist() == weights
    release_dataset(result.run_dir, tmp_path / "hf", "hf")
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert ds.features["weight"].dtype == "float64" and ds["weight"] == weights
    release_dataset(result.run_dir, tmp_path / "csv", "csv")
    csv = pd.read_csv(tmp_path / "csv" / "data" / "train.csv")
    assert csv["weight"].tolist() == pytest.approx(weights)
    card = (tmp_path / "pq" / "README.md").read_text()
    assert "`weight` (output `soft`" in card and "train with these weights" in card
