"""The independent (bag-of-words) learner, balanced accuracy, and what a corpus is worth in real
records: on by default, hand-checked scores, a known learning curve, both learners in the demo."""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fakes.evaluation import BagEmbedder, labelled_texts, make_run, write_table

from augpe.cli import main
from augpe.cli.parser import build_parser
from augpe.evaluate import EvalOptions, demo_baselines, evaluate, format_baselines
from augpe.evaluate.downstream import linear_probe
from augpe.evaluate.independent import analyse, bow_classifier
from augpe.evaluate.learners import uses_centroid_labels
from augpe.evaluate.scores import balanced_accuracy, constant_balanced_accuracy, scores
from augpe.evaluate.worth import (
    curve_sizes,
    format_worth,
    gap_closed,
    learning_curve,
    stratified_draw,
    worth_real,
)

QUICK = EvalOptions(fidelity=False, per_iteration=False, plots=False)


class NoiseEmbedder:
    """Vectors that carry no word or label signal: one fixed random vector per text."""

    name = "noise"

    def encode(self, texts: Sequence[str], desc: str = "") -> np.ndarray:
        return (
            np.stack(
                [
                    np.random.default_rng(zlib.crc32(t.encode())).normal(size=16).astype(np.float32)
                    for t in texts
                ]
            )
            if texts
            else np.zeros((0, 16), dtype=np.float32)
        )


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One default evaluation of a run folder with real training text, report written."""
    tmp = tmp_path_factory.mktemp("independent")
    run = make_run(tmp / "run")
    test = write_table(tmp / "test.csv", *labelled_texts(60, seed=21))
    train = write_table(tmp / "train.csv", *labelled_texts(80, seed=22))
    out = tmp / "out"
    result = evaluate(run, test, real_train=train, embedder=BagEmbedder(), out_dir=out)
    return {"result": result, "out": out, "run": run, "test": test, "train": train, "tmp": tmp}


# ---- on by default --------------------------------------------------------------------------
def test_the_independent_learner_is_in_the_default_evaluation_and_report(
    evaluated: dict[str, Any],
) -> None:
    assert EvalOptions().independent is True
    r = evaluated["result"]
    assert "bow" in r["tiers"]
    for entry in r["results"]:  # every corpus, the real bound included
        bow = entry["downstream"]["bow"]["score"]
        assert bow["tier"] == "bow" and 0.0 <= bow["balanced_accuracy"] <= 1.0
        assert {"accuracy", "macro_f1", "balanced_accuracy"} <= set(
            entry["downstream"]["fast"]["score"]
        )
    assert r["learners"]["bow"]["shares"] == []
    assert any("vote" in s for s in r["learners"]["fast"]["shares"])
    saved = json.loads((evaluated["out"] / "eval.json").read_text())
    assert saved["comparison"]["bow"]["score"].keys() >= {
        "synthetic",
        "eps0",
        "real",
        "constant",
        "worth_real",
        "gap_closed",
    }
    report = (evaluated["out"] / "report.md").read_text()
    assert "bag-of-words (independent):" in report  # the headline block
    assert "Shares with the pipeline: none" in report
    assert (
        "| bag-of-words | none |" in report
        and "| embedding probe | the vote / selection space |" in report
    )
    assert "Real-data learning curve (score" in report


def test_the_cli_runs_it_by_default_and_drops_it_with_no_independent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import augpe.embed

    class Bag(BagEmbedder):
        def __init__(self, *_: object, **__: object) -> None:
            super().__init__()

    monkeypatch.setattr(augpe.embed, "SentenceTransformerEmbedder", Bag)
    run = make_run(tmp_path / "run")
    test = write_table(tmp_path / "test.csv", *labelled_texts(40, seed=31))
    assert build_parser().parse_args(["eval", "r", "--real-test", "t"]).no_independent is False
    base = ["eval", str(run), "--real-test", str(test), "--no-cache", "--no-plots", "-q"]
    assert main([*base, "-o", str(tmp_path / "on"), "--no-fidelity", "--no-iterations"]) == 0
    assert "bag-of-words (independent):" in capsys.readouterr().out
    on = json.loads((tmp_path / "on" / "eval.json").read_text())
    assert "bow" in on["results"][0]["downstream"]
    assert main([*base, "-o", str(tmp_path / "off"), "--no-independent", "--no-fidelity"]) == 0
    assert "bag-of-words (independent)" not in capsys.readouterr().out
    off = json.loads((tmp_path / "off" / "eval.json").read_text())
    assert "bow" not in off["results"][0]["downstream"] and "bow" not in off["tiers"]
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "--no-independent" in capsys.readouterr().out


def test_the_bow_learner_does_not_read_the_embedding_space(evaluated: dict[str, Any]) -> None:
    noise = evaluate(evaluated["run"], evaluated["test"], embedder=NoiseEmbedder(), options=QUICK)
    words = evaluate(evaluated["run"], evaluated["test"], embedder=BagEmbedder(), options=QUICK)
    for a, b in zip(noise["results"], words["results"]):
        bow_a = {k: v for k, v in a["downstream"]["bow"]["score"].items() if k != "seconds"}
        bow_b = {k: v for k, v in b["downstream"]["bow"]["score"].items() if k != "seconds"}
        assert bow_a == bow_b
    syn_noise = noise["results"][0]["downstream"]
    assert syn_noise["bow"]["score"]["balanced_accuracy"] > 0.9  # the words still separate
    assert syn_noise["fast"]["score"]["balanced_accuracy"] < 0.8  # the probe sees only noise


# ---- balanced accuracy ----------------------------------------------------------------------
def test_balanced_accuracy_is_the_mean_recall_over_the_test_classes() -> None:
    test_y = ["a"] * 8 + ["b"] * 2
    pred = ["a"] * 8 + ["a", "b"]  # recall a = 8/8, recall b = 1/2
    assert balanced_accuracy(pred, test_y) == pytest.approx(0.75)
    assert scores(pred, test_y) == {
        "accuracy": 0.9,
        "macro_f1": pytest.approx((16 / 17 + 2 / 3) / 2, abs=1e-5),
        "balanced_accuracy": 0.75,
    }
    # a predicted class absent from the test split is an error, not a class of the mean
    assert balanced_accuracy(["a", "c", "b", "b"], ["a", "a", "b", "b"]) == pytest.approx(0.75)
    assert constant_balanced_accuracy(["x", "y", "z", "z"]) == pytest.approx(1 / 3)


def test_both_learners_report_balanced_accuracy_on_a_hand_checked_case() -> None:
    train_texts = ["delicious tasty love", "wonderful fresh perfect", "awful stale refund"]
    train_texts += ["bland soggy terrible"]
    train_y = ["great", "great", "other", "other"]
    test_texts = ["delicious love", "tasty fresh", "perfect wonderful", "love tasty", "fresh love"]
    test_texts += ["perfect delicious", "awful refund", "stale soggy", "terrible bland"]
    test_texts += ["delicious tasty"]  # an "other" text in great's words: the one error
    test_y = ["great"] * 6 + ["other"] * 4
    r = bow_classifier(train_texts, train_y, test_texts, test_y)
    assert r["tier"] == "bow"
    assert r["accuracy"] == pytest.approx(0.9)
    assert r["balanced_accuracy"] == pytest.approx((6 / 6 + 3 / 4) / 2)  # 0.875
    # a single-class corpus answers one class everywhere: accuracy is the share of that class,
    # balanced accuracy the constant 1/2 whatever the balance
    emb = BagEmbedder()
    for res in (
        bow_classifier(train_texts[:2], ["great"] * 2, test_texts, test_y),
        linear_probe(emb.encode(train_texts[:2]), ["great"] * 2, emb.encode(test_texts), test_y),
    ):
        assert res["accuracy"] == pytest.approx(0.6) and res["balanced_accuracy"] == 0.5


# ---- worth n real records -------------------------------------------------------------------
def test_worth_n_interpolates_in_log_n_on_a_known_curve() -> None:
    curve = {"sizes": [16, 32, 64, 128], "mean": [0.6, 0.7, 0.8, 0.9]}
    mid = worth_real(curve, 0.75)
    assert mid is not None and mid["relation"] == "~"
    assert mid["n"] == pytest.approx(math.sqrt(32 * 64), abs=0.05)  # halfway in log n: 45.3
    assert worth_real(curve, 0.7 + 0.1 / 4)["n"] == pytest.approx(32 * 2**0.25, abs=0.05)  # type: ignore[index]
    assert worth_real(curve, 0.9) == {"relation": "~", "n": 128}
    assert worth_real(curve, 0.6) == {"relation": "~", "n": 16}
    assert worth_real(curve, 0.55) == {"relation": "<", "n": 16}
    assert worth_real(curve, 0.95) == {"relation": ">", "n": 128}
    assert worth_real(curve, None) is None
    # not monotone: the first crossing counts
    bumpy = {"sizes": [16, 32, 64, 128], "mean": [0.6, 0.8, 0.7, 0.9]}
    assert worth_real(bumpy, 0.75)["n"] == pytest.approx(16 * 2**0.75, abs=0.05)  # type: ignore[index]
    assert [format_worth(worth_real(curve, v)) for v in (0.75, 0.55, 0.95)] == [
        "~45",
        "< 16",
        "> 128",
    ]
    assert format_worth(None) == "n/a"


def test_gap_closed_is_measured_from_the_better_of_eps0_and_a_constant() -> None:
    assert gap_closed(0.7, 0.6, 0.8, 0.5) == pytest.approx(0.5)
    assert gap_closed(0.7, 0.4, 0.8, 0.5) == pytest.approx(2 / 3, abs=1e-4)  # base: constant
    assert gap_closed(0.7, None, 0.8, 0.5) == pytest.approx(2 / 3, abs=1e-4)
    assert gap_closed(0.55, 0.6, 0.8, 0.5) == pytest.approx(-0.25)  # worse than eps = 0
    assert gap_closed(0.7, 0.6, None, 0.5) is None and gap_closed(0.7, 0.9, 0.8, 0.5) is None


def test_curve_sizes_and_draws_are_stratified_and_seeded() -> None:
    assert curve_sizes(100) == [16, 32, 64, 100]
    assert curve_sizes(16) == [16] and curve_sizes(10) == [10] and curve_sizes(0) == []
    y = ["rare"] + ["common"] * 99
    for d in range(20):
        idx = stratified_draw(y, 16, np.random.default_rng([0, 16, d]))
        assert len(set(idx.tolist())) == 16 and 0 in idx  # the one rare text, every draw
    calls: list[int] = []

    def score(idx: np.ndarray) -> float:
        calls.append(len(idx))
        return len(idx) / 100

    c = learning_curve(score, y, [16, 32, 100], draws=5)
    assert calls == [16] * 5 + [32] * 5 + [100]  # one draw of the whole split
    assert c["mean"] == [0.16, 0.32, 1.0] and c["std"] == [0.0, 0.0, 0.0]
    same = learning_curve(lambda idx: float(idx.sum()), y, [16, 32], draws=5)
    assert same == learning_curve(lambda idx: float(idx.sum()), y, [16, 32], draws=5)


def test_evaluation_reports_the_learning_curves_and_worth(evaluated: dict[str, Any]) -> None:
    r = evaluated["result"]
    for tier in ("fast", "bow"):
        curve = r["learning_curves"][tier]["score"]
        n = len(curve["sizes"])  # the curve stops once past the best corpus
        assert curve["sizes"] == [16, 32, 64, 80][:n] and curve["draws"] == 5
        assert [len(s) for s in curve["scores"]] == [5, 5, 5, 1][:n]
        best = max(
            e["downstream"][tier]["score"]["balanced_accuracy"]
            for e in r["results"]
            if e["kind"] != "real"
        )
        assert n == 4 or curve["mean"][-1] >= best > max(curve["mean"][:-1], default=0.0)
        comp = r["comparison"][tier]["score"]
        assert comp["constant"] == 0.5 and comp["real"] is not None
        assert comp["worth_real"]["relation"] in ("~", "<", ">")
        syn = r["results"][0]["downstream"][tier]["score"]
        assert syn["worth_real"] == comp["worth_real"]
    real = next(e for e in r["results"] if e["kind"] == "real")
    assert "worth_real" not in real["downstream"]["bow"]["score"]


# ---- the demo's closing lines ---------------------------------------------------------------
def test_the_demo_lines_show_both_learners_and_the_centroid_labeller(
    evaluated: dict[str, Any],
) -> None:
    run = evaluated["run"]
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["privacy"]["centroids"] = True
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    try:
        d = demo_baselines(
            run, evaluated["train"], evaluated["test"], "review", "score", embedder=BagEmbedder()
        )
    finally:
        cfg["privacy"]["centroids"] = False
        (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    text = format_baselines(d)
    lines = text.splitlines()
    assert "synthetic (eps=1.00, n=20)" in lines[0] and "real data (n=80)" in lines[0]
    probe = next(x for x in lines if "embedding probe (" in x)
    bow = next(x for x in lines if "bag-of-words (independent):" in x)
    for line in (probe, bow):
        for part in ("synthetic ", "| eps=0 ", "| real ", "| constant 0.500", "| worth "):
            assert part in line, (part, line)
    assert "shares the vote space" in probe and "labels from DP centroids in this space" in probe
    assert "centroids" not in bow
    assert set(d["learners"]) == {"fast", "bow"}


def test_the_curve_reads_pre_analysed_text_exactly_as_the_learner_reads_text() -> None:
    train, test = labelled_texts(40, seed=41), labelled_texts(30, seed=42)
    raw = bow_classifier(train[0], train[1], test[0], test[1])
    pre = bow_classifier(analyse(train[0]), train[1], analyse(test[0]), test[1], analysed=True)
    assert {k: v for k, v in raw.items() if k != "seconds"} == {
        k: v for k, v in pre.items() if k != "seconds"
    }


def test_a_curve_stops_once_past_the_best_corpus_and_reads_the_same_worth() -> None:
    """The larger sizes cost the most and change no answer: worth_real reads the first crossing."""
    y = ["a", "b"] * 200
    calls: list[int] = []

    def score(idx: np.ndarray) -> float:  # rises with the size, as a real curve does
        calls.append(len(idx))
        return min(0.99, 0.5 + 0.1 * np.log2(len(idx) / 8))

    sizes = [16, 32, 64, 128, 256, 400]
    full = learning_curve(score, y, sizes, draws=2)
    n_full = len(calls)
    calls.clear()
    short = learning_curve(score, y, sizes, draws=2, until=0.75)
    assert short["sizes"] == [16, 32, 64] and full["sizes"] == sizes
    assert len(calls) < n_full and max(calls) == 64  # the costly sizes were never fitted
    for value in (0.55, 0.66, 0.75):
        assert worth_real(short, value) == worth_real(full, value)


@pytest.mark.parametrize("stated, on", [(True, True), (False, False), ("auto", False)])
def test_only_a_centroid_release_stated_true_is_named_as_the_labeller(
    tmp_path: Path, stated: object, on: bool
) -> None:
    """A folder that states `centroids: auto` (a benchmark's eps = 0 arm) made no centroid
    release: the probe's number must not be credited to one."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"privacy": {"centroids": stated}}))
    assert uses_centroid_labels(tmp_path) is on
