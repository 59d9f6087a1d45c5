"""`evaluate` / `augpe eval` on run folders and plain corpora: outputs, baselines, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes.evaluation import BagEmbedder, labelled_texts, make_run, write_table

from augpe.cli import main
from augpe.errors import AugpeError, DataError
from augpe.evaluate import (
    EvalError,
    EvalOptions,
    default_out_dir,
    demo_baselines,
    evaluate,
    format_baselines,
    headline,
)
from augpe.evaluate.corpus import load_corpus, random_api_corpus


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    run = make_run(tmp_path / "run")
    test = write_table(tmp_path / "test.csv", *labelled_texts(60, seed=21))
    train = write_table(tmp_path / "train.csv", *labelled_texts(80, seed=22))
    return {"run": run, "test": test, "train": train, "tmp": tmp_path}


def test_evaluate_run_folder_writes_eval_json_and_report(files: dict[str, Path]) -> None:
    out = files["tmp"] / "out"
    r = evaluate(
        files["run"], files["test"], real_train=files["train"], embedder=BagEmbedder(), out_dir=out
    )
    names = [e["name"] for e in r["results"]]
    assert names == ["synthetic", "eps=0 (random API)", "real (upper bound)"]
    assert [e["kind"] for e in r["results"]] == ["synthetic", "baseline", "real"]
    syn = r["results"][0]
    assert syn["epsilon"] == 1.0 and syn["n"] == 20
    assert syn["downstream"]["fast"]["score"]["accuracy"] > 0.8  # separable text beats chance (0.5)
    assert syn["fidelity"]["fid"] is not None and 0 < syn["fidelity"]["mauve"] <= 1
    # per iteration: populations 0..T-1, then the final corpus
    assert [(p["stage"], p["iteration"]) for p in r["per_iteration"]] == [
        ("population", 0),
        ("population", 1),
        ("final", 2),
    ]
    saved = json.loads((out / "eval.json").read_text())
    assert saved["results"][0]["downstream"] == syn["downstream"]
    report = (out / "report.md").read_text()
    assert "## Results" in report and "eps=0 (random API)" in report
    assert "downstream accuracy on real test (score, fast tier): synthetic" in report


def test_eps0_baseline_is_the_random_api_samples_of_population_00(files: dict[str, Path]) -> None:
    c = random_api_corpus(files["run"])
    assert c is not None and c.epsilon == 0.0
    raw = json.loads((files["run"] / "state" / "population_00.json").read_text())
    randoms = [s for s in raw["samples"] if s["op"] == "random"]
    assert c.texts == [s["text"] for s in randoms]
    names = ["great", "other"]  # class_id indexes the sorted class names
    assert c.labels["score"] == [names[s["class_id"]] for s in randoms]


def test_a_baseline_written_with_dp_keywords_is_said_not_to_be_eps0(files: dict[str, Path]) -> None:
    import yaml

    plain = evaluate(files["run"], files["test"], embedder=BagEmbedder())
    assert not any("not an eps = 0 corpus" in n for n in plain["notes"])
    cfg_path = files["run"] / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["privacy"].update(keywords=True, lengths=True)
    cfg_path.write_text(yaml.safe_dump(cfg))
    shaped = evaluate(files["run"], files["test"], embedder=BagEmbedder())
    note = [n for n in shaped["notes"] if "not an eps = 0 corpus" in n]
    assert len(note) == 1 and "DP keywords and lengths release" in note[0]


def test_embeds_the_real_test_set_once(files: dict[str, Path]) -> None:
    emb = BagEmbedder()
    evaluate(files["run"], files["test"], embedder=emb, options=EvalOptions(per_iteration=False))
    assert emb.texts_seen == 60 + 20 + 20  # test, synthetic, eps=0 baseline: each text once


def test_evaluate_any_two_corpora(files: dict[str, Path]) -> None:
    syn = write_table(
        files["tmp"] / "syn.csv", *labelled_texts(30, seed=23), text_col="text", label_col="y"
    )
    test = write_table(
        files["tmp"] / "t.csv", *labelled_texts(30, seed=24), text_col="text", label_col="y"
    )
    r = evaluate(syn, test, text_column="text", label_columns=["y"], embedder=BagEmbedder())
    assert [e["name"] for e in r["results"]] == ["synthetic"]
    assert r["results"][0]["downstream"]["fast"]["y"]["accuracy"] > 0.8
    assert r["per_iteration"] == []


def test_compare_runs_and_accuracy_vs_eps_plot(files: dict[str, Path]) -> None:
    pytest.importorskip("matplotlib")
    inf = make_run(files["tmp"] / "inf", seed=5, epsilon=float("inf"))
    out = files["tmp"] / "cmp"
    r = evaluate(
        files["run"], files["test"], compare={"eps=inf": inf}, embedder=BagEmbedder(), out_dir=out
    )
    assert [e["epsilon"] for e in r["results"]] == [1.0, 0.0, "inf"]  # JSON-safe inf
    assert (out / "accuracy_vs_eps_score.png").stat().st_size > 1000
    assert (out / "per_iteration.png").is_file() and (out / "lengths.png").is_file()


def test_demo_baselines(files: dict[str, Path]) -> None:
    d = demo_baselines(
        files["run"], files["train"], files["test"], "review", "score", embedder=BagEmbedder()
    )
    assert set(d) >= {"synthetic", "eps0", "real", "majority", "n_synthetic", "n_eps0", "n_real"}
    assert d["n_synthetic"] == 20 and d["n_eps0"] == 20 and d["n_real"] == 80
    assert d["real"] > 0.8 and d["majority"] == 0.5
    line = format_baselines(d)
    assert (
        "synthetic (eps=1.00, n=20)" in line
        and "eps=0 random API (n=20)" in line
        and "real data (n=80)" in line
    )


def test_headline_marks_single_class_corpora(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", classes=("great",))
    test = write_table(tmp_path / "test.csv", *labelled_texts(20, seed=25))
    r = evaluate(run, test, embedder=BagEmbedder(), options=EvalOptions(per_iteration=False))
    assert "(single class!)" in headline(r)
    assert r["results"][0]["downstream"]["fast"]["score"]["accuracy"] == 0.5
    assert any("single class" in n for n in r["notes"])


def test_default_out_dir_is_beside_the_run_folder(files: dict[str, Path]) -> None:
    assert default_out_dir(files["run"]) == files["tmp"] / "run.eval"


# ---- bad input: a clear AugpeError naming the file / column, never a stack trace ----------------
def test_test_file_without_the_label_column(files: dict[str, Path]) -> None:
    bad = write_table(files["tmp"] / "bad.csv", ["a b c"], ["x"], label_col="stars")
    with pytest.raises(
        DataError, match=r"bad\.csv.*label column \(--label-columns\) 'score' not found"
    ):
        evaluate(files["run"], bad, embedder=BagEmbedder())


def test_test_file_without_the_text_column(files: dict[str, Path]) -> None:
    bad = write_table(files["tmp"] / "bad.csv", ["a b c"], ["great"], text_col="body")
    with pytest.raises(DataError, match=r"text column \(--text-column\) 'review' not found"):
        evaluate(files["run"], bad, embedder=BagEmbedder())


def test_empty_synthetic_corpus(files: dict[str, Path]) -> None:
    (files["run"] / "synthetic.jsonl").write_text("")
    with pytest.raises(DataError, match=r"synthetic\.jsonl: the synthetic corpus is empty"):
        evaluate(files["run"], files["test"], embedder=BagEmbedder())


def test_not_a_run_folder(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.yaml").write_text("data: {}\n")
    with pytest.raises(EvalError, match="not a finished augpe run folder"):
        load_corpus(tmp_path / "half")


def test_compare_corpus_without_the_label_column(files: dict[str, Path]) -> None:
    other = write_table(files["tmp"] / "o.csv", ["a b c"], ["x"], label_col="stars")
    with pytest.raises(DataError, match=r"o\.csv \(compare 'x'\).*'score' not found"):
        evaluate(files["run"], files["test"], compare={"x": other}, embedder=BagEmbedder())


def test_unknown_tier() -> None:
    with pytest.raises(AugpeError, match="unknown evaluation tier"):
        EvalOptions(tiers=("slow",))


def test_the_eval_embedder_runs_on_the_device_and_batch_of_its_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import augpe.embed
    from augpe.evaluate.options import make_eval_embedder

    built: list[tuple[str, str, int]] = []

    class Recorder(BagEmbedder):
        def __init__(self, model: str, device: str, batch_size: int, **_: object) -> None:
            super().__init__()
            built.append((model, device, batch_size))

    monkeypatch.setattr(augpe.embed, "SentenceTransformerEmbedder", Recorder)
    make_eval_embedder("m", EvalOptions(), show_progress=False)
    opts = EvalOptions(embedding_device="cuda", embedding_batch_size=8)
    make_eval_embedder("m", opts, show_progress=False)
    assert built == [("m", "cpu", 64), ("m", "cuda", 8)]  # the default is today's cpu / 64


def test_cli_bad_input_prints_one_clear_line(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_table(files["tmp"] / "bad.csv", ["a b c"], ["x"], label_col="stars")
    code = main(["eval", str(files["run"]), "--real-test", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("augpe: error: ") and "bad.csv" in err and "'score'" in err
    assert "Traceback" not in err


def test_cli_rejects_a_malformed_compare(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["eval", str(files["run"]), "--real-test", str(files["test"]), "--compare", "noequals"]
    )
    assert code == 2 and "NAME=PATH" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_eval_with_the_real_embedder(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = files["tmp"] / "cli-out"
    code = main(
        [
            "eval",
            str(files["run"]),
            "--real-test",
            str(files["test"]),
            "--real-train",
            str(files["train"]),
            "-o",
            str(out),
            "-q",
            "--no-plots",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "downstream accuracy on real test (score, fast tier): synthetic" in printed
    assert json.loads((out / "eval.json").read_text())["embedding_model"] == "all-MiniLM-L6-v2"
