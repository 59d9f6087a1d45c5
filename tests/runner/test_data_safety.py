"""Careless use on the run side: nothing of the user's is deleted, the label set is public or
guarded, a resume continues the run as started, one run per folder, silent wrong results are
refused, every failure is one clear line, and messages on private data carry no count or text."""

from __future__ import annotations

import errno
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fakes.pe import FakeLLM, HashEmbedder, private_rows, public_pool, small_config, write_jsonl

from augpe.cli import main
from augpe.config import Config, DataConfig, load_config
from augpe.errors import ConfigError, DataError
from augpe.records.data import load_private_data
from augpe.runner import compose
from augpe.runner.layout import RunLayout


def _data(tmp_path: Path, n: int = 40, name: str = "d.jsonl") -> Path:
    return write_jsonl(tmp_path / name, private_rows(n))


def _cfg(path: Path, out: Path, **sections: Any) -> Config:
    sections.setdefault("pe", {"iterations": 2, "samples": 10, "variations": 2})
    return small_config(path, out, **sections)


def _run(cfg: Config, llm: FakeLLM | None = None) -> compose.RunResult:
    return compose.run(
        cfg, show_progress=False, llm=llm or FakeLLM(public_pool(10)), embedder=HashEmbedder(32)
    )


def _load(path: Path, **kw: Any) -> Any:
    return load_private_data(DataConfig(path=str(path), **kw))


def _one_error_line(err: str) -> str:
    """The CLI's error: exactly one `augpe: error:` line and no traceback."""
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("augpe: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`augpe run` on a small config, with the fake LLM and embedder in place of the models."""
    monkeypatch.setattr(
        compose,
        "build_components",
        lambda cfg, show_progress=True: (FakeLLM(public_pool(10)), HashEmbedder(32)),
    )
    data = _data(tmp_path)
    out = tmp_path / "run"

    def write(**sections: Any) -> Path:
        raw: dict[str, Any] = {
            "data": {"path": str(data), "label_columns": ["label"]},
            "privacy": {"epsilon": 2.0, "noise_seed": 1234},
            "pe": {"iterations": 2, "samples": 10, "variations": 2},
            "output": {"dir": str(out)},
        }
        for key, val in sections.items():
            raw.setdefault(key, {}).update(val)
        path = tmp_path / "cfg.yaml"
        path.write_text(yaml.safe_dump(raw), encoding="utf-8")
        return path

    return write, data, out


# ---- 9. overwrite deletes only an earlier augpe run -------------------------------------------
def _fake_run_folder(out: Path, *extra: str) -> None:
    out.mkdir(parents=True)
    (out / "config.yaml").write_text("data: {}\n")
    (out / "ledger.json").write_text("{}\n")
    (out / "state").mkdir()
    (out / "state" / "votes_01.json").write_text("{}\n")
    for name in extra:
        (out / name).write_text("mine\n")


def test_overwrite_refuses_a_folder_with_files_that_are_not_a_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _fake_run_folder(out, "foo.csv", "notes.txt", "a1", "a2", "a3", "a4")
    cfg = _cfg(_data(tmp_path), out, output={"dir": str(out), "overwrite": True})
    with pytest.raises(ConfigError) as err:
        _run(cfg)
    msg = str(err.value)
    assert str(out) in msg and "not part of an augpe run" in msg
    assert "a1, a2, a3, a4, foo.csv, ... (1 more)" in msg  # at most a few names
    assert (out / "foo.csv").read_text() == "mine\n" and (out / "ledger.json").is_file()


@pytest.mark.parametrize("where", ["run/d.jsonl", "run/sub/d.jsonl"])
def test_overwrite_never_deletes_the_folder_holding_the_private_data(
    tmp_path: Path, where: str
) -> None:
    out = tmp_path / "run"
    _fake_run_folder(out)
    data = tmp_path / where
    data.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(data, private_rows(40))
    cfg = _cfg(data, out, output={"dir": str(out), "overwrite": True})
    with pytest.raises(ConfigError, match=r"holds the private data \(data\.path\)"):
        _run(cfg)
    assert data.is_file()


def test_a_folder_that_is_not_a_run_is_not_offered_for_overwriting(cli, capsys) -> None:
    write, _, out = cli
    out.mkdir()
    (out / "thesis.tex").write_text("years of work\n")
    assert main(["run", str(write())]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "thesis.tex" in line and "overwrite" not in line and "--resume" not in line
    assert (out / "thesis.tex").is_file()


def test_overwrite_replaces_an_earlier_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = _cfg(_data(tmp_path), out)
    _run(cfg)
    (out / "state" / ".votes_01.json.x.tmp").write_text("")  # left by a killed write
    (out / "bench_run.json").write_text("{}")  # the benchmark harness's marker
    cfg.output.overwrite = True
    assert _run(cfg).corpus_path.is_file()


def test_output_dir_that_is_a_file_is_one_clear_line(cli, capsys) -> None:
    write, _, out = cli
    out.write_text("a file\n")
    assert main(["run", str(write())]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(out) in line and "is a file" in line and out.read_text() == "a file\n"


# ---- 10. the label set: public data.labels, or data-derived and guarded --------------------------
def test_public_labels_are_the_classes_in_order_with_an_empty_class(tmp_path: Path) -> None:
    path, labels = _data(tmp_path), ["negclass", "posclass", "x"]
    with pytest.raises(DataError, match="0 keeps a class of data.labels"):
        _load(path, label_columns=["label"], labels=labels)  # min_records_per_class: 1
    data = _load(path, label_columns=["label"], labels=labels, min_records_per_class=0)
    assert data.class_names == ["negclass", "posclass", "x"] and data.labels_public
    assert np.bincount(data.class_ids, minlength=3).tolist() == [20, 20, 0]
    assert data.class_labels[2] == {"label": "x"}


def test_a_run_with_a_public_class_that_has_no_records_completes(tmp_path: Path) -> None:
    labels = ["ghost", "posclass", "negclass"]
    cfg = _cfg(
        _data(tmp_path), tmp_path / "run", data={"labels": labels, "min_records_per_class": 0}
    )
    result = _run(cfg)
    assert list(result.summary["samples_per_class"]) == labels


def test_public_labels_of_several_columns_are_joined_names(tmp_path: Path) -> None:
    rows = [{"text": f"text {i}", "a": "Food", "b": i % 2} for i in range(6)]
    path = write_jsonl(tmp_path / "r.jsonl", rows)
    labels = ["Food | 1", "Food | 0", "Drink | 0"]
    data = _load(path, label_columns=["a", "b"], labels=labels, min_records_per_class=0)
    assert data.class_names == ["Food | 1", "Food | 0", "Drink | 0"]
    assert data.class_labels[0] == {"a": "Food", "b": "1"}
    with pytest.raises(ConfigError, match="not 2 value"):
        _load(path, label_columns=["a", "b"], labels=["Food"])


def test_yaml_number_labels_match_the_datas_numbers(tmp_path: Path) -> None:
    rows = [{"text": f"text {i}", "stars": [1, 2.0][i % 2]} for i in range(4)]
    cfg = yaml.safe_load("labels: [2, 1.0]")
    data = _load(write_jsonl(tmp_path / "r.jsonl", rows), label_columns=["stars"], **cfg)
    assert data.class_names == ["2", "1"] and data.class_ids.tolist() == [1, 0, 1, 0]


def test_a_record_outside_the_public_labels_names_column_and_setting_not_value(
    tmp_path: Path,
) -> None:
    rows = [*private_rows(4), {"text": "a record", "label": "secret-diagnosis"}]
    path = write_jsonl(tmp_path / "r.jsonl", rows)
    with pytest.raises(DataError) as err:
        _load(path, label_columns=["label"], labels=["posclass", "negclass"])
    msg = str(err.value)
    assert str(path) in msg and "column 'label'" in msg and "not in data.labels" in msg
    assert "secret-diagnosis" not in msg and "a record" not in msg


def test_data_derived_labels_are_warned_about_and_not_public(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="augpe"):
        data = _load(_data(tmp_path), label_columns=["label"])
    assert not data.labels_public
    assert "data.labels is not set" in caplog.text and "not protected" in caplog.text
    assert _load(_data(tmp_path)).labels_public  # no label column: the one class "all"


@pytest.mark.parametrize(
    "label_of",
    [
        lambda i: f"a long free text that someone wrote about their visit, number {i}, in full",
        lambda i: f"user-{i:05d}",  # ids: every record its own class
    ],
)
def test_text_like_labels_are_refused_before_any_request(tmp_path: Path, label_of) -> None:
    rows = [{"text": f"record {i} about tea", "label": label_of(i)} for i in range(40)]
    cfg = _cfg(write_jsonl(tmp_path / "r.jsonl", rows), tmp_path / "run")
    llm = FakeLLM()
    with pytest.raises(DataError) as err:
        _run(cfg, llm)
    msg = str(err.value)
    assert "column 'label'" in msg and "data.labels" in msg
    counted = msg.replace(str(tmp_path), "")  # pytest's own folder numbers are not counts
    assert label_of(3) not in msg and "40" not in counted
    assert llm.prompts == [] and not (tmp_path / "run").exists()


def test_a_label_column_with_a_few_rare_classes_is_accepted(tmp_path: Path) -> None:
    rows = [{"text": f"r {i}", "label": ["a", "b", "c", "d", "e"][i]} for i in range(5)]
    assert _load(write_jsonl(tmp_path / "r.jsonl", rows), label_columns=["label"]).num_classes == 5


def test_the_text_column_as_label_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is the text column"):
        _load(_data(tmp_path), label_columns=["text"], labels=["x"])


# ---- 12. a resume continues the run as started -------------------------------------------------
def test_resume_with_an_edited_config_is_refused_listing_the_change(cli, capsys) -> None:
    write, _, out = cli
    assert main(["run", str(write())]) == 0
    stored = out / "config.yaml"
    raw = yaml.safe_load(stored.read_text())
    raw["pe"]["samples"] = 12
    stored.write_text(yaml.safe_dump(raw))
    assert main(["run", "--resume", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "pe.samples: 10 -> 12" in line


def test_resume_with_a_changed_setting_is_refused(tmp_path: Path) -> None:
    cfg = _cfg(_data(tmp_path), tmp_path / "run")
    _run(cfg)
    other = cfg.model_copy(deep=True)
    other.generation.temperature = 0.5
    other.pe.samples = 12
    with pytest.raises(ConfigError) as err:
        compose.run(other, resume=True, show_progress=False, llm=FakeLLM(), embedder=HashEmbedder())
    assert "generation.temperature: 1.0 -> 0.5" in str(err.value)
    assert "pe.samples: 10 -> 12" in str(err.value)


def test_resume_may_change_settings_that_cannot_change_results(cli, capsys) -> None:
    write, _, out = cli
    assert main(["run", str(write())]) == 0
    corpus = (out / "synthetic.jsonl").read_bytes()
    extra = ["--set", "generation.max_cost=5", "--set", "pe.vote_chunk=7", "--quiet"]
    assert main(["run", "--resume", str(out), *extra]) == 0
    assert (out / "synthetic.jsonl").read_bytes() == corpus


# ---- 13. one run per folder --------------------------------------------------------------------
_HOLD = (
    "import fcntl, sys, time\n"
    "f = open(sys.argv[1], 'a')\n"
    "fcntl.flock(f, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "time.sleep(120)\n"
)


def test_a_second_run_on_a_held_folder_fails_at_once(tmp_path: Path) -> None:
    cfg = _cfg(_data(tmp_path), tmp_path / "run")
    lock = RunLayout.of(cfg).lock_file
    assert lock.parent == tmp_path  # beside the run folder: never released
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        llm = FakeLLM()
        with pytest.raises(ConfigError, match="another augpe run holds") as err:
            _run(cfg, llm)
        assert str(tmp_path / "run") in str(err.value)
        assert llm.prompts == [] and not (tmp_path / "run").exists()
    finally:
        holder.kill()
        holder.wait()
    _run(cfg)  # the holder gone, the run goes ahead
    assert not lock.exists()  # and leaves no lock behind


# ---- 15. silent wrong results ------------------------------------------------------------------
def test_a_number_text_column_is_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [{"text": i, "label": "a"} for i in range(4)])
    with pytest.raises(DataError) as err:
        _load(path, label_columns=["label"])
    assert str(path) in str(err.value) and "column 'text' (data.text_column)" in str(err.value)
    assert "holds a number" in str(err.value)


def test_numeric_labels_one_and_one_point_zero_are_one_class(tmp_path: Path) -> None:
    rows = [{"text": f"t {i}", "y": [1, 1.0, "1"][i % 3]} for i in range(6)]
    data = _load(write_jsonl(tmp_path / "r.jsonl", rows), label_columns=["y"])
    assert data.class_names == ["1"]


def test_a_number_and_a_text_spelling_it_otherwise_are_refused(tmp_path: Path) -> None:
    rows = [{"text": f"t {i}", "y": [1, "1.0"][i % 2]} for i in range(4)]
    with pytest.raises(DataError, match=r"column 'y' \(data\.label_columns\) holds numbers"):
        _load(write_jsonl(tmp_path / "r.jsonl", rows), label_columns=["y"])


@pytest.mark.parametrize("inside", ["run/private", "run"])
def test_a_private_folder_inside_the_run_folder_is_refused(tmp_path: Path, inside: str) -> None:
    cfg = _cfg(_data(tmp_path), tmp_path / "run")
    cfg.output.private_dir = str(tmp_path / inside)
    with pytest.raises(ConfigError, match="output.private_dir: .* lies inside the run folder"):
        _run(cfg)
    assert not (tmp_path / "run").exists()
    _fake_run_folder(tmp_path / "run")  # nor is an earlier run with it inside overwritten
    cfg.output.overwrite = True
    with pytest.raises(ConfigError, match="lies inside the run folder"):
        _run(cfg)
    assert (tmp_path / "run" / "ledger.json").is_file()


def test_a_very_large_epsilon_is_warned_about_at_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data": {"path": "x.csv"}, "privacy": {"epsilon": 100}}))
    with caplog.at_level(logging.WARNING, logger="augpe"):
        load_config(path)
    assert "privacy.epsilon = 100" in caplog.text and "no protection" in caplog.text
    caplog.clear()
    path.write_text(yaml.safe_dump({"data": {"path": "x.csv"}, "privacy": {"epsilon": 8}}))
    with caplog.at_level(logging.WARNING, logger="augpe"):
        load_config(path)
    assert "no protection" not in caplog.text


# ---- 16. one clear line, exit code 2 -----------------------------------------------------------
def test_dry_run_with_fewer_samples_than_classes_is_one_clear_line(cli, capsys) -> None:
    write, _, _ = cli
    assert main(["run", str(write(pe={"samples": 1, "k": 1})), "--dry-run"]) == 2
    assert "pe.samples=1 is smaller than the number of classes" in _one_error_line(
        capsys.readouterr().err
    )


def test_a_full_disk_is_one_clear_line_and_resume_continues(
    cli, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    write, _, out = cli
    real = compose.write_jsonl

    def full(path: Path, rows: list[dict[str, Any]]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(compose, "write_jsonl", full)
    assert main(["run", str(write())]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "disk is full" in line and "free space" in line
    assert f"augpe run --resume {out}" in line
    monkeypatch.setattr(compose, "write_jsonl", real)
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    assert (out / "synthetic.jsonl").is_file()


# ---- 7. messages on private data: no count, no text --------------------------------------------
def test_small_class_error_names_the_setting_but_no_class_or_count(tmp_path: Path) -> None:
    rows = [*private_rows(40), {"text": "the one record of a rare class", "label": "rare"}]
    path = write_jsonl(tmp_path / "r.jsonl", rows)
    for labels in (None, ["posclass", "negclass", "rare"]):
        with pytest.raises(DataError) as err:
            _load(path, label_columns=["label"], labels=labels, min_records_per_class=3)
        msg = str(err.value).replace(str(path), "")
        assert "data.min_records_per_class = 3" in msg and "'label'" in msg
        assert "rare" not in msg and "1" not in msg and "20" not in msg


def test_public_seed_overlap_error_carries_no_count_or_text(tmp_path: Path) -> None:
    rows = private_rows(40)
    seed = write_jsonl(tmp_path / "public.jsonl", [rows[0], rows[1], *private_rows(4, seed=9)])
    cfg = _cfg(_data(tmp_path), tmp_path / "run", data={"public_seed": str(seed)})
    with pytest.raises(ConfigError) as err:
        _run(cfg)
    msg = str(err.value)
    assert str(seed) in msg and "column 'text'" in msg and "data.public_seed" in msg
    assert "2" not in msg.replace(str(seed), "") and rows[0]["text"] not in msg


def test_empty_text_and_missing_label_errors_carry_no_count_or_text(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "e.jsonl", [{"text": " "}, {"text": None}, {"text": ""}])
    with pytest.raises(DataError) as err:
        _load(path)
    msg = str(err.value).replace(str(path), "")
    assert "column 'text' (data.text_column)" in msg and "3" not in msg
    rows = [{"text": "my private words", "label": "a"}, {"text": "more private words"}]
    path = write_jsonl(tmp_path / "m.jsonl", rows)
    with pytest.raises(DataError) as err:
        _load(path, label_columns=["label"])
    msg = str(err.value)
    assert "column 'label' (data.label_columns)" in msg and "private words" not in msg
