"""Bad input gets a clear error naming the file/row/setting, exit code 2, and nothing on disk."""

from pathlib import Path

import pytest
import yaml

from augpe.cli import main


def _write_data(path: Path, rows: list[tuple[str, str]]) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["review", "score"])
        w.writerows(rows)


@pytest.fixture
def setup(tmp_path):
    data = tmp_path / "data.csv"
    _write_data(
        data,
        [
            (f"review number {i} about tea and coffee", "great" if i % 2 else "other")
            for i in range(20)
        ],
    )
    out = tmp_path / "run"

    def make(**sections):
        cfg = {
            "data": {"path": str(data), "text_column": "review", "label_columns": ["score"]},
            "pe": {"iterations": 2, "samples": 4, "variations": 2},
            "output": {"dir": str(out)},
        }
        for key, val in sections.items():
            cfg.setdefault(key, {}).update(val)
        p = tmp_path / "cfg.yaml"
        p.write_text(yaml.safe_dump(cfg))
        return p

    return make, data, out


def _run_err(capsys, argv):
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "section, setting, needle",
    [
        ("privacy", {"epsilon": 0}, "privacy.epsilon"),
        ("privacy", {"epsilon": -1}, "privacy.epsilon"),
        ("privacy", {"delta": 1.5}, "privacy.delta"),
        ("privacy", {"delta": 0}, "privacy.delta"),
        ("pe", {"iterations": 0}, "pe.iterations"),
        ("pe", {"samples": 1, "k": 1}, "pe.samples=1 is smaller than the number of classes"),
        ("pe", {"samples": 2, "variations": 1}, "pe.k = 4 is larger than the population"),
        ("data", {"text_column": "body"}, "body"),
        ("data", {"label_columns": ["stars"]}, "stars"),
        ("data", {"min_records_per_class": 50}, "min_records_per_class"),
        ("generation", {"prompts": "no_such_prompts"}, "no_such_prompts"),
        ("pe", {"bogus": 1}, "pe.bogus"),
    ],
)
def test_bad_setting_is_a_clear_error_and_writes_nothing(setup, capsys, section, setting, needle):
    make, _, out = setup
    code, err = _run_err(capsys, ["run", str(make(**{section: setting}))])
    assert code == 2
    assert needle in err
    assert "Traceback" not in err
    assert not out.exists()


def test_missing_data_file_is_named(setup, capsys, tmp_path):
    make, data, out = setup
    data.unlink()
    code, err = _run_err(capsys, ["run", str(make())])
    assert code == 2 and str(data) in err and not out.exists()


def test_non_utf8_data_is_named(setup, capsys):
    make, data, out = setup
    data.write_bytes(b"review,score\n\xff\xfe bad bytes,great\nok,other\n")
    code, err = _run_err(capsys, ["run", str(make())])
    assert code == 2 and "UTF-8" in err and str(data) in err and not out.exists()


def test_empty_dataset_is_an_error(setup, capsys):
    make, data, out = setup
    data.write_text("review,score\n", encoding="utf-8")
    code, err = _run_err(capsys, ["run", str(make())])
    assert code == 2 and ("no records" in err.lower() or "empty" in err.lower())
    assert str(data) in err
    assert not out.exists()


def test_unreadable_prompt_template_is_named(setup, capsys, tmp_path):
    make, _, out = setup
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsystem: [unclosed\n", encoding="utf-8")
    code, err = _run_err(capsys, ["run", str(make(generation={"prompts": str(bad)}))])
    assert code == 2 and str(bad) in err and not out.exists()


def test_missing_config_file(capsys, tmp_path):
    code, err = _run_err(capsys, ["run", str(tmp_path / "nope.yaml")])
    assert code == 2 and "nope.yaml" in err


def test_existing_run_folder_is_not_overwritten(setup, capsys):
    make, _, out = setup
    out.mkdir()
    (out / "config.yaml").write_text("data: {}\n")
    (out / "synthetic.jsonl").write_text("keep me\n")
    code, err = _run_err(capsys, ["run", str(make())])
    assert code == 2 and "--resume" in err
    assert (out / "synthetic.jsonl").read_text() == "keep me\n"


def test_account_prints_sigma_and_its_inverse(capsys):
    assert main(["account", "--epsilon", "1", "--delta", "1e-5", "--iterations", "10"]) == 0
    out = capsys.readouterr().out
    sigma = float(out.split("sigma = ")[1].split()[0])
    assert 10.0 < sigma < 14.0
    assert main(["account", "--sigma", str(sigma), "--delta", "1e-5", "--iterations", "10"]) == 0
    eps = float(capsys.readouterr().out.split("epsilon = ")[1].split()[0])
    assert 0.99 < eps <= 1.0


def test_run_help_lists_every_setting(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for setting in (
        "privacy.epsilon",
        "pe.iterations",
        "generation.backend",
        "embedding.model",
        "data.text_column",
    ):
        assert setting in out


@pytest.mark.parametrize("delta", [1e-5, 1e-8])
def test_budget_check_cross_checks_the_epsilon_the_summary_prints(tmp_path, capsys, delta):
    """`augpe budget --check`: the dp-accounting PLD epsilon at the run's delta."""
    pytest.importorskip("dp_accounting", reason="--check needs dp-accounting")
    import re

    from augpe.privacy import GaussianRelease, Ledger

    ledger = Ledger(delta=delta, target_epsilon=10.0)
    for t in (1, 2, 3):
        ledger.record(GaussianRelease(f"vote_{t}", sigma=2.0, iteration=t))
    ledger.save(tmp_path / "ledger.json")
    assert main(["budget", str(tmp_path), "--check"]) == 0
    out = capsys.readouterr().out
    pld = float(re.search(r"accountant pld: eps = ([0-9.]+)", out).group(1))
    assert pld == pytest.approx(ledger.epsilon(), rel=0.02)
