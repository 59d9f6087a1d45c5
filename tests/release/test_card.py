"""The dataset card: every privacy number in it is the ledger's, no number comes from the private
data, it is a valid Hugging Face card, and it reads nothing but ledger / config / corpus."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from fakes.pe import FakeLLM, HashEmbedder, private_rows, public_pool, small_config, write_jsonl

import augpe
from augpe.config import Config
from augpe.privacy import Ledger
from augpe.records.data import load_private_data
from augpe.release.card import build_card, card_counts
from augpe.release.export import release_dataset
from augpe.runner.compose import RunResult, run

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e-?\d+)?(?![\w.])")


def _make(tmp: Path, epsilon: float, **privacy: object) -> tuple[Config, RunResult]:
    rows = [
        r for i, r in enumerate(private_rows(250, seed=3)) if r["label"] == "posclass" or i % 5 != 1
    ]
    tmp.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(tmp / "private.jsonl", rows)
    cfg = small_config(data, tmp / "run", epsilon, privacy=privacy, pe={"iterations": 3})
    return cfg, run(
        cfg, show_progress=False, llm=FakeLLM(public_pool(40)), embedder=HashEmbedder(64)
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, RunResult]:
    return _make(tmp_path_factory.mktemp("card"), 2.0)


def _section(card: str, title: str) -> str:
    body = card.split(f"## {title}\n", 1)[1]
    return body.split("\n## ", 1)[0]


def _numbers(text: str) -> list[float]:
    return [float(x) for x in _NUMBER.findall(text)]


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=0.0)


def test_privacy_numbers_in_the_card_equal_the_ledgers(finished: tuple[Config, RunResult]) -> None:
    _, result = finished
    ledger = Ledger.load(result.run_dir / "ledger.json")
    d = ledger.to_dict()
    card = build_card(result.run_dir)
    rows = dict(
        re.findall(
            r"^\| ([A-Za-z -]+) \| (.+) \|$", _section(card, "Privacy guarantee"), re.MULTILINE
        )
    )
    eps, target = _numbers(rows["epsilon spent"])
    assert _close(eps, ledger.epsilon()) and _close(target, ledger.target_epsilon)
    assert _close(_numbers(rows["delta"])[0], ledger.delta)
    assert rows["how delta was chosen"] == d["delta_rule"]  # verbatim
    assert rows["neighbouring relation"] == d["neighbouring"]
    assert rows["label set"] == d["label_set"]  # verbatim: public, or not protected
    assert _close(
        _numbers(rows["epsilon under replace-one neighbours"])[0], d["epsilon_replace_one"]
    )
    n_votes = sum(e.kind == "vote_histogram" for e in ledger.events)
    assert n_votes == 3 and len(ledger.events) == 4  # T = 3 votes + the class-count release
    assert rows["DP releases"] == "4 (3 vote histograms, 1 class-count release)"
    assert _close(_numbers(rows["composition"])[0], ledger.mu())
    table = re.findall(
        r"^\| (\w+) \| (\w+) \| ([\d-]+) \| ([\d.e-]+) \| ([\d.e-]+) \| ([\d.e-]+) \|$",
        card,
        re.MULTILINE,
    )
    assert [(t[0], t[1]) for t in table] == [(e.name, e.kind) for e in ledger.events]
    assert [float(t[3]) for t in table] == [e.sigma for e in ledger.events]  # sigmas exactly
    assert [float(t[4]) for t in table] == [e.sensitivity for e in ledger.events]
    assert [float(t[5]) for t in table] == pytest.approx(
        [e.replace_one_sensitivity for e in ledger.events], rel=1e-5
    )
    assert [None if t[2] == "-" else int(t[2]) for t in table] == [
        e.iteration for e in ledger.events
    ]
    # The headline sentence states the same (eps, delta).
    head = re.search(r"\*\*\(([\d.e-]+), ([\d.e-]+)\)-differentially private\*\*", card)
    assert (
        head and _close(float(head[1]), ledger.epsilon()) and _close(float(head[2]), ledger.delta)
    )


def test_no_number_in_the_card_comes_from_the_private_data(
    finished: tuple[Config, RunResult],
) -> None:
    cfg, result = finished
    card = build_card(result.run_dir, command="augpe release RUN OUT --format parquet")
    ledger = Ledger.load(result.run_dir / "ledger.json")
    sizes = card_counts(result.run_dir)
    allowed = [ledger.epsilon(), ledger.target_epsilon, ledger.delta, ledger.mu()]
    allowed += [ledger.replace_one_epsilon()]
    allowed += [e.replace_one_sensitivity or 0 for e in ledger.events]
    allowed += [len(ledger.events), sum(e.kind == "vote_histogram" for e in ledger.events)]
    allowed += [x for e in ledger.events for x in (e.sigma, e.sensitivity, e.iteration or 0)]
    allowed += [sum(sizes.values()), *sizes.values()]  # synthetic rows: post-processing
    allowed += [cfg.pe.iterations, cfg.pe.samples, cfg.pe.variations, cfg.pe.k]  # public config
    allowed += [float(x) for x in augpe.__version__.split(".")]
    allowed += _numbers(ledger.delta_rule)  # printed verbatim: it may name a DP estimate
    _, body = card.split("\n---\n", 1)
    for x in _numbers(body.replace("n<1K", "")):
        assert any(_close(x, a) or x == a for a in allowed), x
    # The private record count and the clean class sizes are nowhere in it.
    data = load_private_data(cfg.data)
    clean = np.bincount(data.class_ids).tolist()
    assert len(data) == 225 and clean == [100, 125]
    assert not {len(data), *clean} & set(_numbers(card))


def test_card_is_a_hugging_face_dataset_card(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    _, result = finished
    release_dataset(result.run_dir, tmp_path / "out", "parquet", license="cc-by-4.0")
    text = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["license"] == "cc-by-4.0"
    assert meta["task_categories"] == ["text-classification"]
    assert meta["size_categories"] == ["n<1K"]
    assert {"differential-privacy", "synthetic"} <= set(meta["tags"])
    (files,) = [c["data_files"] for c in meta["configs"]]
    assert files == [{"split": "train", "path": "data/train.parquet"}]
    assert (tmp_path / "out" / files[0]["path"]).is_file()
    for section in ("Privacy guarantee", "What is public", "How it was made", "Dataset structure"):
        assert f"## {section}" in text
    body = _section(text, "What is public, and what the guarantee does not cover")
    assert len([p for p in body.split("\n\n") if p.strip()]) == 2  # two short paragraphs
    made = _section(text, "How it was made")
    assert "`embedded` backend" in made and "all-MiniLM-L6-v2" in made
    assert "prompt set: `generic`" in made and f"augpe {augpe.__version__}" in made


def test_card_reads_only_the_ledger_the_config_and_the_corpus(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    _, result = finished
    only = tmp_path / "three"
    only.mkdir()
    for name in ("ledger.json", "config.yaml", "synthetic.jsonl"):
        shutil.copy(result.run_dir / name, only / name)
    # The private data is gone too: the card never needs it.
    conf = (
        (only / "config.yaml")
        .read_text()
        .replace(
            str(Path(result.run_dir).parent / "private.jsonl"), str(tmp_path / "nowhere.jsonl")
        )
    )
    (only / "config.yaml").write_text(conf)
    assert build_card(only) == build_card(result.run_dir)


def test_card_prints_the_delta_rule_verbatim_and_ignores_unknown_ledger_keys(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    _, result = finished
    copy = tmp_path / "run"
    shutil.copytree(result.run_dir, copy)
    raw = json.loads((copy / "ledger.json").read_text())
    raw["delta_rule"] = "set by the user: delta = 1e-6 (< 1/N for any N we would publish)"
    raw["run_nonce"] = "5f2c0a"
    raw["size_estimate"] = {"sigma": 9.5, "kind": "whatever comes next"}
    (copy / "ledger.json").write_text(json.dumps(raw))
    card = build_card(copy)
    assert "| how delta was chosen | " + raw["delta_rule"] + " |" in card
    assert "5f2c0a" not in card and "whatever comes next" not in card


def test_card_of_a_run_without_noise_says_it_is_not_private(tmp_path: Path) -> None:
    _, result = _make(tmp_path, math.inf, class_counts="uniform")
    card = build_card(result.run_dir)
    assert "# Synthetic text (NOT DP)" in card
    assert "**This corpus is NOT differentially private**" in card
    assert "differentially private**" not in card.replace("NOT differentially private**", "")
    assert "| epsilon spent | inf" in card
    assert "equal shares, independent of the private data" in card


def test_card_warns_when_the_ledger_says_the_noise_seed_is_not_secret(
    finished: tuple[Config, RunResult],
) -> None:
    _, result = finished  # small_config sets privacy.noise_seed: a test-only, known seed
    rule = Ledger.load(result.run_dir / "ledger.json").to_dict().get("noise_seed_rule")
    if rule is None:
        pytest.skip("this ledger does not record how the noise seed was chosen")
    card = build_card(result.run_dir)
    assert f"**Warning: the noise seed was {rule}.**" in card
    assert f"| noise seed | {rule} |" in card


def test_card_lists_every_kind_of_release_the_ledger_holds(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    from augpe.privacy.ledger import RELEASE_KINDS

    if "keywords" not in RELEASE_KINDS:
        pytest.skip("this ledger has no keyword releases")
    copy = tmp_path / "run"
    shutil.copytree(result_dir := finished[1].run_dir, copy)
    raw = json.loads((result_dir / "ledger.json").read_text())
    raw["events"].append(
        {
            "name": "keywords",
            "sigma": 9.25,
            "sensitivity": 1.0,
            "iteration": None,
            "kind": "keywords",
        }
    )
    (copy / "ledger.json").write_text(json.dumps(raw))
    ledger = Ledger.load(copy / "ledger.json")
    card = build_card(copy)
    assert (
        "| DP releases | 5 (3 vote histograms, 1 class-count release, 1 topic-keyword release) |"
        in card
    )
    assert "| keywords | keywords | - | 9.25 | 1 |" in card
    eps = re.search(r"^\| epsilon spent \| ([\d.]+) ", card, re.MULTILINE)
    assert eps and _close(float(eps[1]), ledger.epsilon())  # the extra release is priced in
