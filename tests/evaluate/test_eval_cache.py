"""`augpe eval` with a private cache: the real text is embedded (and the real bound measured) once
per content, the results are the ones an uncached evaluation gives, the cache is a PRIVATE folder,
and a run's own private-embedding cache is reused."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fakes.evaluation import BagEmbedder, labelled_texts, make_run, write_table
from fakes.pe import FakeLLM, HashEmbedder, private_rows, public_pool, small_config, write_jsonl

from augpe.cli import main
from augpe.errors import AugpeError
from augpe.evaluate import EvalOptions, evaluate
from augpe.evaluate.cache import EmbeddingCache, default_cache_dir, text_key
from augpe.runner.compose import run

OPTS = EvalOptions(per_iteration=False, plots=False)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "run_a": make_run(tmp_path / "run_a", seed=0),
        "run_b": make_run(tmp_path / "run_b", seed=1),
        "test": write_table(tmp_path / "test.csv", *labelled_texts(60, seed=21)),
        "train": write_table(tmp_path / "train.csv", *labelled_texts(80, seed=22)),
        "cache": tmp_path / "eval.PRIVATE",
        "tmp": tmp_path,
    }


def _timeless(x: object) -> object:
    """A result without its wall times (the one thing two runs of a metric may differ in)."""
    if isinstance(x, dict):
        return {k: _timeless(v) for k, v in x.items() if k != "seconds"}
    if isinstance(x, list):
        return [_timeless(v) for v in x]
    return x


def _real(result: dict[str, object]) -> object:
    (real,) = [r for r in result["results"] if r["kind"] == "real"]  # type: ignore[union-attr,index]
    return _timeless({k: v for k, v in real.items() if k != "source"})


def test_second_eval_of_another_corpus_embeds_no_real_text(files: dict[str, Path]) -> None:
    first, second = BagEmbedder(), BagEmbedder()
    kw = {"real_train": files["train"], "options": OPTS, "cache_dir": files["cache"]}
    r1 = evaluate(files["run_a"], files["test"], embedder=first, **kw)  # type: ignore[arg-type]
    assert first.texts_seen == 60 + 80 + 20 + 20  # test, train, synthetic, eps=0 baseline
    r2 = evaluate(files["run_b"], files["test"], embedder=second, **kw)  # type: ignore[arg-type]
    assert second.texts_seen == 20 + 20  # only run_b's own corpora
    r1_real = [r for r in r1["results"] if r["kind"] == "real"]
    assert r1_real == [r for r in r2["results"] if r["kind"] == "real"]  # read back, times too
    # ... and they are what an evaluation without any cache measures.
    plain = evaluate(
        files["run_b"],
        files["test"],
        real_train=files["train"],
        embedder=BagEmbedder(),
        options=OPTS,
    )
    assert _real(plain) == _real(r2)
    assert _timeless(plain["results"][0]) == _timeless(r2["results"][0])


def test_the_key_is_the_text_not_the_file(files: dict[str, Path]) -> None:
    evaluate(
        files["run_a"],
        files["test"],
        embedder=BagEmbedder(),
        options=OPTS,
        cache_dir=files["cache"],
    )
    # The same test texts, shuffled, in another file and format; one text changed.
    df = pd.read_csv(files["test"]).sample(frac=1.0, random_state=0).reset_index(drop=True)
    df.loc[0, "review"] = "a brand new sentence nobody embedded before"
    moved = files["tmp"] / "elsewhere" / "test.parquet"
    moved.parent.mkdir()
    df.to_parquet(moved)
    emb = BagEmbedder()
    evaluate(files["run_a"], moved, embedder=emb, options=OPTS, cache_dir=files["cache"])
    assert emb.texts_seen == 1 + 20 + 20  # the changed text, then the run's corpora


def test_vectors_read_back_from_disk_are_the_models(tmp_path: Path) -> None:
    texts = ["one text", "another text", "one text"]
    vecs = BagEmbedder().encode(texts)
    EmbeddingCache(tmp_path, "bag-of-words").put(texts, vecs)
    again = EmbeddingCache(tmp_path, "bag-of-words").get(["another text", "one text", "new"])
    assert np.array_equal(again[0], vecs[1]) and np.array_equal(again[1], vecs[0])
    assert again[2] is None
    assert EmbeddingCache(tmp_path, "other-model").get(["one text"]) == [None]  # per model


def test_a_key_ending_in_a_zero_byte_is_read_back(tmp_path: Path) -> None:
    # 1 key in 256 ends in 0x00; a numpy bytes dtype would strip it and miss the text forever.
    texts = [t for t in (f"text {i}" for i in range(5000)) if text_key("m", t)[-1] == 0][:3]
    assert len(texts) == 3
    vecs = np.arange(12, dtype=np.float32).reshape(3, 4)
    EmbeddingCache(tmp_path, "m").put(texts, vecs)
    got = EmbeddingCache(tmp_path, "m").get(texts)
    assert all(g is not None for g in got) and np.array_equal(np.stack(got), vecs)  # type: ignore[arg-type]


def test_progress_output_says_what_is_embedded(
    files: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="augpe")
    kw = {"real_train": files["train"], "options": OPTS, "cache_dir": files["cache"]}
    evaluate(files["run_a"], files["test"], embedder=BagEmbedder(), **kw)  # type: ignore[arg-type]
    log1 = caplog.text
    assert "eval: real test, 60 texts: 0 from the private eval cache, embedding 60 with " in log1
    assert "eval: real (upper bound), 80 texts: 0 from the private eval cache, embedding 80" in log1
    assert "eval: synthetic, embedding 20 texts with bag-of-words" in log1
    assert f"private eval cache {files['cache']}" in log1
    caplog.clear()
    evaluate(files["run_b"], files["test"], embedder=BagEmbedder(), **kw)  # type: ignore[arg-type]
    assert "eval: real test, 60 texts: 60 from the private eval cache, embedding 0" in caplog.text
    assert "real (upper bound): results from the private eval cache" in caplog.text


def test_the_cache_is_never_a_run_eval_or_release_folder(files: dict[str, Path]) -> None:
    for bad in (files["run_a"] / "cache", files["run_a"], files["tmp"] / "out" / "c"):
        with pytest.raises(AugpeError, match="eval cache folder"):
            evaluate(
                files["run_a"],
                files["test"],
                embedder=BagEmbedder(),
                options=OPTS,
                out_dir=files["tmp"] / "out",
                cache_dir=bad,
            )
    assert not (files["run_a"] / "cache").exists()
    release = files["tmp"] / "release"
    release.mkdir()
    (release / "ledger.json").write_text("{}")
    with pytest.raises(AugpeError, match="looks like a run or release folder"):
        evaluate(
            files["run_a"],
            files["test"],
            embedder=BagEmbedder(),
            options=OPTS,
            cache_dir=release / "cache",
        )


def test_cli_refuses_a_cache_dir_inside_the_run(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "eval",
            str(files["run_a"]),
            "--real-test",
            str(files["test"]),
            "--cache-dir",
            str(files["run_a"] / "c"),
        ]
    )
    assert code == 2 and "eval cache folder" in capsys.readouterr().err


def test_default_cache_dir_is_private_and_configurable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AUGPE_EVAL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "augpe" / "eval.PRIVATE"
    monkeypatch.setenv("AUGPE_EVAL_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


def test_reuses_the_runs_own_private_embedding_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = write_jsonl(tmp_path / "private.jsonl", private_rows(120, seed=3))
    test = write_jsonl(tmp_path / "test.jsonl", private_rows(40, seed=9))
    cfg = small_config(data, tmp_path / "run", 2.0)
    result = run(cfg, show_progress=False, llm=FakeLLM(public_pool(40)), embedder=HashEmbedder(64))
    private_cache = list((Path(str(result.run_dir) + ".PRIVATE") / "cache").glob("*.npy"))
    assert len(private_cache) == 1
    caplog.set_level(logging.INFO, logger="augpe")
    emb = HashEmbedder(64)  # the run's embedder, by name
    evaluate(
        result.run_dir,
        test,
        real_train=data,
        embedder=emb,
        options=OPTS,
        cache_dir=tmp_path / "eval.PRIVATE",
    )
    assert "120 vectors from the run's own private-embedding cache" in caplog.text
    assert (
        "real (upper bound), 120 texts: 120 from the private eval cache, embedding 0" in caplog.text
    )
    # the private texts were never embedded again (no call for the real upper bound)
    assert not any(desc == "embed real (upper bound)" and n for desc, n in emb.calls)
    # Another embedder (another name) does not match the run's cache.
    caplog.clear()
    other = HashEmbedder(32)
    evaluate(
        result.run_dir,
        test,
        real_train=data,
        embedder=other,
        options=OPTS,
        cache_dir=tmp_path / "eval2.PRIVATE",
    )
    assert "own private-embedding cache" not in caplog.text
    assert ("embed real (upper bound)", 120) in other.calls
