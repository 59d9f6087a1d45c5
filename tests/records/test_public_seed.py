"""data.public_seed: public texts stand in for the RANDOM API in the initial population."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fakes.pe import (
    CLASSES,
    FakeLLM,
    HashEmbedder,
    class_text,
    private_rows,
    small_config,
    write_jsonl,
)

from augpe.config import generation_config, load_config
from augpe.errors import ConfigError, DataError
from augpe.evaluate.corpus import random_api_corpus
from augpe.pe.apis import TextAPIs
from augpe.pe.prompts import load_prompt_set
from augpe.records.data import load_public_seed
from augpe.runner import compose as pipeline

PUBLIC = [  # (text, label) rows of a public file; one empty text, dropped
    ("A public posclass text about fresh coffee beans.", "posclass"),
    ("Another public posclass text, smooth and rich.", "posclass"),
    ("", "posclass"),
    ("A public negclass text: the box came broken.", "negclass"),
]


def _public_file(tmp_path: Path, rows=PUBLIC) -> Path:
    return write_jsonl(tmp_path / "public.jsonl", [{"text": t, "label": c} for t, c in rows])


def _cfg(tmp_path: Path, public: Path | None, **pe):
    data = write_jsonl(tmp_path / "private.jsonl", private_rows(60))
    return small_config(
        data,
        tmp_path / "run",
        data={"public_seed": None if public is None else str(public)},
        pe={"iterations": 1, "samples": 6, "variations": 2, **pe},
    )


def test_public_seed_file_is_read_with_the_private_data_columns_and_classes(tmp_path) -> None:
    cfg = _cfg(tmp_path, _public_file(tmp_path))
    rows = load_public_seed(cfg.data, list(CLASSES))
    assert rows == [(PUBLIC[0][0], 0), (PUBLIC[1][0], 0), (PUBLIC[3][0], 1)]  # empty text dropped
    assert load_public_seed(_cfg(tmp_path, None).data, list(CLASSES)) == []


def test_public_seed_errors_name_the_file_the_setting_and_the_row(tmp_path) -> None:
    bad = _public_file(tmp_path, PUBLIC + [("A text of a class nobody has.", "thirdclass")])
    with pytest.raises(DataError, match=r"public\.jsonl \(data\.public_seed\): row 5 has class "):
        load_public_seed(_cfg(tmp_path, bad).data, list(CLASSES))
    missing = tmp_path / "nowhere.jsonl"
    with pytest.raises(DataError, match=r"nowhere\.jsonl \(setting data\.public_seed\)"):
        load_public_seed(_cfg(tmp_path, missing).data, list(CLASSES))
    cols = write_jsonl(tmp_path / "cols.jsonl", [{"body": "x", "label": "posclass"}])
    with pytest.raises(
        DataError,
        match=r"cols\.jsonl \(data\.public_seed\): column 'text' \(data\.text_column\) not "
        r"found; available columns: body, label",
    ):
        load_public_seed(_cfg(tmp_path, cols).data, list(CLASSES))
    empty = _public_file(tmp_path, [("", "posclass")])
    with pytest.raises(DataError, match="no text in column 'text'"):
        load_public_seed(_cfg(tmp_path, empty).data, list(CLASSES))


def _apis(public) -> tuple[TextAPIs, FakeLLM]:
    llm = FakeLLM()
    apis = TextAPIs(
        llm, load_prompt_set("generic"), generation_config(), list(CLASSES), 3, None, public
    )
    return apis, llm


def test_random_api_takes_public_texts_of_each_class_then_generates_the_rest() -> None:
    public = [(t, CLASSES.index(c)) for t, c in PUBLIC if t]
    apis, llm = _apis(public)
    out = apis.random([0, 0, 0, 1, 1])
    assert [s.class_id for s in out] == [0, 0, 0, 1, 1]
    assert [s.op for s in out] == ["public", "public", "random", "public", "random"]
    assert {s.text for s in out if s.op == "public"} == {t for t, _ in public}
    assert [s.id for s in out] == ["t0s0-p0", "t0s0-p1", "t0s0-n2", "t0s0-p3", "t0s0-n4"]
    assert len(llm.prompts) == 2  # only the slots the public texts could not fill were generated
    again, _ = _apis(public)
    assert [s.text for s in again.random([0, 0, 0, 1, 1])] == [s.text for s in out]


def test_without_a_public_seed_the_random_api_is_unchanged() -> None:
    apis, llm = _apis(())
    out = apis.random([0, 1, 0])
    assert [s.id for s in out] == ["t0s0-n0", "t0s0-n1", "t0s0-n2"]
    assert {s.op for s in out} == {"random"} and len(llm.prompts) == 3


def test_a_run_starts_from_the_public_seed_and_varies_it(tmp_path) -> None:
    public = [(class_text(c, np.random.default_rng([9, i])), c) for i, c in enumerate(CLASSES * 4)]
    cfg = _cfg(tmp_path, _public_file(tmp_path, public))
    llm = FakeLLM()
    result = pipeline.run(cfg, show_progress=False, llm=llm, embedder=HashEmbedder(32))
    pop0 = json.loads((result.run_dir / "state" / "population_00.json").read_text())["samples"]
    seeds = [s for s in pop0 if s["parent_id"] is None]
    assert seeds and all(s["op"] == "public" for s in seeds)  # 8 public texts cover 6 samples
    assert {s["text"] for s in seeds} <= {t for t, _ in public}
    names = sorted(CLASSES)  # the run's class ids index the private data's sorted class names
    assert all(names[s["class_id"]] == dict(public)[s["text"]] for s in seeds)
    # No RANDOM API request was made; every variation prompt rephrases a public text.
    assert len(llm.prompts) == len(pop0) - len(seeds)
    assert all(any(s["text"] in p for s in seeds) for p in llm.prompts)
    baseline = random_api_corpus(result.run_dir)  # eps = 0: what was there before any vote
    assert baseline is not None and sorted(baseline.texts) == sorted(s["text"] for s in seeds)


def test_a_relative_public_seed_path_is_relative_to_the_config_file(tmp_path) -> None:
    _public_file(tmp_path)
    write_jsonl(tmp_path / "private.jsonl", private_rows(20))
    (tmp_path / "cfg.yaml").write_text(
        "data: {path: private.jsonl, label_columns: [label], public_seed: public.jsonl}\n",
        encoding="utf-8",
    )
    cfg = load_config(tmp_path / "cfg.yaml")
    assert cfg.data.public_seed == str((tmp_path / "public.jsonl").resolve())


def test_a_public_seed_that_holds_a_private_record_is_refused_before_anything_is_written(
    tmp_path,
) -> None:
    rows = private_rows(60)
    cfg = _cfg(tmp_path, _public_file(tmp_path, [(rows[3]["text"], rows[3]["label"])]))
    with pytest.raises(ConfigError, match=r"public\.jsonl holds texts .* are also records"):
        pipeline.run(cfg, show_progress=False, llm=FakeLLM(), embedder=HashEmbedder(32))
    assert not (tmp_path / "run").exists()
