"""`augpe release`: only the allow-list leaves, verified against every private record; and the run
folder itself never holds the private-embedding cache or the noise seed."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from fakes.pe import FakeLLM, HashEmbedder, private_rows, public_pool, small_config, write_jsonl

from augpe.cli import main
from augpe.config import Config
from augpe.records.data import load_private_data
from augpe.release.verify import (
    RELEASE_FILES,
    ReleaseError,
    find_class_counts,
    release,
    scan_for_private,
)
from augpe.runner.compose import RunResult, run

SEED = 918273645546372819  # the noise seed small_config sets (18 digits: searchable)


def _run(
    tmp: Path, epsilon: float = 2.0, privacy: dict[str, object] | None = None
) -> tuple[Config, RunResult]:
    # Unequal classes (100 vs 125), so a leaked count vector is recognisable.
    rows = [
        r for i, r in enumerate(private_rows(250, seed=3)) if r["label"] == "posclass" or i % 5 != 1
    ]
    tmp.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(tmp / "private.jsonl", rows)
    cfg = small_config(data, tmp / "run", epsilon, privacy=privacy or {})
    return cfg, run(
        cfg, show_progress=False, llm=FakeLLM(public_pool(40)), embedder=HashEmbedder(64)
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, RunResult]:
    return _run(tmp_path_factory.mktemp("release"))


def _private(cfg: Config) -> tuple[list[str], list[str], list[int]]:
    data = load_private_data(cfg.data)
    counts = np.bincount(data.class_ids, minlength=data.num_classes).tolist()
    return data.texts, data.class_names, counts


def _readable(path: Path) -> str:
    """Everything a reader of `path` sees: raw text and every decoded JSON string (independent of
    the scanner under test)."""
    raw = path.read_text(encoding="utf-8")
    parts = [raw]
    docs = (
        [json.loads(line) for line in raw.splitlines() if line.strip()]
        if path.suffix == ".jsonl"
        else ([json.loads(raw)] if path.suffix == ".json" else [])
    )

    def walk(o: object) -> None:
        if isinstance(o, str):
            parts.append(o)
        elif isinstance(o, dict):
            for k, v in o.items():
                parts.append(str(k))
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    for d in docs:
        walk(d)
    return "\n".join(parts)


# ---- the release of a real (small) run -------------------------------------------------------
def test_no_file_in_the_release_contains_a_clean_count_or_a_private_text(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    cfg, result = finished
    files = release(result.run_dir, tmp_path / "out", include_state=True)
    texts, names, counts = _private(cfg)
    assert len(texts) == 225 and names == ["negclass", "posclass"] and counts == [100, 125]
    assert {f.name for f in files} >= set(RELEASE_FILES)
    assert any(f.parent.name == "state" for f in files)
    # The library's own scan ...
    assert scan_for_private(tmp_path / "out", texts) == []
    assert find_class_counts(tmp_path / "out", names, counts) == []
    # ... and a brute-force check that does not trust it: every record, every file.
    for f in (tmp_path / "out").rglob("*"):
        if f.is_file():
            hay = _readable(f)
            assert not [t for t in texts if t in hay], f
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [summary["noisy_class_counts"][n] for n in names] != counts
    noisy = json.loads((tmp_path / "out" / "state" / "class_counts.json").read_text())["noisy"]
    assert not np.allclose(noisy, counts)


def test_release_copies_the_allow_list_only(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    _, result = finished
    run_copy = tmp_path / "run"
    shutil.copytree(result.run_dir, run_copy)
    (run_copy / "notes.txt").write_text("scratch")
    (run_copy / "embeddings.npy").write_bytes(b"\x93NUMPY")
    (run_copy / "state" / "clean_votes_01.json").write_text("{}")
    files = release(run_copy, tmp_path / "out")
    got = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*"))
    assert got == sorted(RELEASE_FILES)
    assert sorted(f.name for f in files) == sorted(RELEASE_FILES)
    release(run_copy, tmp_path / "with_state", include_state=True)
    state = {p.name for p in (tmp_path / "with_state" / "state").iterdir()}
    assert "clean_votes_01.json" not in state
    assert {"population_00.json", "votes_01.json", "votes_02.json", "class_counts.json"} <= state


def _refused(run_dir: Path, out: Path, match: str, **kw: object) -> None:
    with pytest.raises(ReleaseError, match=match):
        release(run_dir, out, **kw)  # type: ignore[arg-type]
    assert not out.exists()
    assert not [
        p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")
    ]  # no staging left


def test_release_refuses_a_planted_private_record(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    cfg, result = finished
    texts, _, _ = _private(cfg)
    run_copy = tmp_path / "run"
    shutil.copytree(result.run_dir, run_copy)
    with open(run_copy / "synthetic.jsonl", "a", encoding="utf-8") as f:
        f.write(
            json.dumps({"id": "x", "text": f"Intro.  {texts[17]}  outro", "class": "posclass"})
            + "\n"
        )
    _refused(run_copy, tmp_path / "out", r"synthetic.jsonl: contains a private record verbatim")


def test_release_refuses_clean_class_counts(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    cfg, result = finished
    _, names, counts = _private(cfg)
    run_copy = tmp_path / "run"
    shutil.copytree(result.run_dir, run_copy)
    summary = json.loads((run_copy / "summary.json").read_text())
    summary["records_per_class"] = dict(zip(names, counts))
    (run_copy / "summary.json").write_text(json.dumps(summary))
    _refused(
        run_copy,
        tmp_path / "out",
        r"summary.json#0.records_per_class: equals the clean class counts",
    )


def test_release_refuses_the_noise_seed(finished: tuple[Config, RunResult], tmp_path: Path) -> None:
    _, result = finished
    run_copy = tmp_path / "run"
    shutil.copytree(result.run_dir, run_copy)
    # The copied run's PRIVATE folder holds the seed, as a real run's does.
    shutil.copytree(Path(str(result.run_dir) + ".PRIVATE"), Path(str(run_copy) + ".PRIVATE"))
    summary = json.loads((run_copy / "summary.json").read_text())
    summary["debug"] = {"rng": SEED}
    (run_copy / "summary.json").write_text(json.dumps(summary))
    _refused(run_copy, tmp_path / "out", r"summary.json: contains the noise seed")


def test_release_refuses_a_ledger_over_its_target(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    _, result = finished
    run_copy = tmp_path / "run"
    shutil.copytree(result.run_dir, run_copy)
    ledger = json.loads((run_copy / "ledger.json").read_text())
    ledger["target_epsilon"] = 0.5  # the run spent 2
    (run_copy / "ledger.json").write_text(json.dumps(ledger))
    _refused(run_copy, tmp_path / "out", "privacy budget exceeded")


def test_release_refuses_bad_destinations(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    _, result = finished
    with pytest.raises(ReleaseError, match="outside the run folder"):
        release(result.run_dir, result.run_dir / "out")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.txt").write_text("x")
    with pytest.raises(ReleaseError, match="not empty"):
        release(result.run_dir, tmp_path / "full")
    with pytest.raises(ReleaseError, match="PRIVATE folder"):
        release(Path(str(result.run_dir) + ".PRIVATE"), tmp_path / "o2")
    with pytest.raises(ReleaseError, match="inside the PRIVATE folder"):
        release(result.run_dir, Path(str(result.run_dir) + ".PRIVATE") / "out")
    with pytest.raises(ReleaseError, match="not a finished augpe run"):
        release(tmp_path, tmp_path / "o3")


def test_release_needs_the_private_data_to_verify(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    cfg, result = finished
    run_copy = tmp_path / "run"
    shutil.copytree(result.run_dir, run_copy)
    conf = (
        (run_copy / "config.yaml").read_text().replace(cfg.data.path, str(tmp_path / "moved.jsonl"))
    )
    (run_copy / "config.yaml").write_text(conf)
    _refused(run_copy, tmp_path / "out", "give its path with --data")
    shutil.copy(cfg.data.path, tmp_path / "elsewhere.jsonl")
    assert release(run_copy, tmp_path / "out", private_data=str(tmp_path / "elsewhere.jsonl"))


def test_release_refuses_a_run_without_noise(tmp_path: Path) -> None:
    _, result = _run(tmp_path / "a", math.inf)  # class counts "dp" with sigma 0: the clean counts
    _refused(result.run_dir, tmp_path / "out", "NOT differentially private")
    # Even when told to release it, the clean class counts in it are caught.
    _refused(
        result.run_dir, tmp_path / "out", "equals the clean class counts", allow_non_private=True
    )
    _, uniform = _run(tmp_path / "b", math.inf, privacy={"class_counts": "uniform"})
    assert release(uniform.run_dir, tmp_path / "out", allow_non_private=True)


def test_release_cli(
    finished: tuple[Config, RunResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, result = finished
    assert main(["release", str(result.run_dir), str(tmp_path / "out"), "--state"]) == 0
    assert "released" in capsys.readouterr().out
    assert main(["release", str(result.run_dir), str(tmp_path / "out")]) == 2
    assert "not empty" in capsys.readouterr().err


# ---- the scanner itself ----------------------------------------------------------------------
def test_scan_finds_records_behind_json_escapes_and_whitespace(tmp_path: Path) -> None:
    texts = [
        'He said "never again", then\nleft the café at noon',  # quotes, newline, non-ASCII
        "a  record   with odd    spacing in it",
        "Too short to count",  # < 5 words: occurs in any corpus, not evidence
    ]
    (tmp_path / "a.json").write_text(json.dumps({"x": [texts[0]]}, ensure_ascii=True))
    (tmp_path / "b.jsonl").write_text(
        json.dumps({"t": "prefix a record with odd spacing in it!"}) + "\n"
    )
    (tmp_path / "c.txt").write_text("Too short to count")
    found = scan_for_private(tmp_path, texts)
    assert len(found) == 2
    assert found[0].startswith("a.json: contains a private record")
    assert found[1].startswith("b.jsonl: contains a private record verbatim (first at line 1)")


def test_scan_does_not_flag_a_partial_record(tmp_path: Path) -> None:
    text = "the soup was cold and the bread was stale"
    (tmp_path / "s.jsonl").write_text(
        json.dumps({"text": "the soup was cold and the bread was fresh"}) + "\n"
    )
    assert scan_for_private(tmp_path, [text]) == []


def test_class_count_finder(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(
        json.dumps({"a": {"x": 3, "y": 5}, "b": [3, 5], "c": [3.4, 5.1], "d": {"x": 3}})
    )
    found = find_class_counts(tmp_path, ["x", "y"], [3, 5])
    assert [f.split(":")[0] for f in found] == ["s.json#0.a", "s.json#0.b"]
    assert find_class_counts(tmp_path, ["all"], [3]) == []  # one class: only {all: N} or [N]


# ---- the run folder itself ------------------------------------------------------------------
def test_run_folder_never_holds_the_private_embedding_cache_or_the_noise_seed(
    finished: tuple[Config, RunResult],
) -> None:
    cfg, result = finished
    assert cfg.embedding.cache_private  # the cache was written ...
    private = Path(str(result.run_dir) + ".PRIVATE")
    assert list((private / "cache").glob("private-embeddings-*.npy"))  # ... to the PRIVATE folder
    nonce = json.loads((result.run_dir / "ledger.json").read_text())["run_nonce"]
    secret = json.loads((private / "runs" / f"{nonce}.json").read_text())
    assert secret["noise_seed"] == SEED and secret["user_seed"] is True
    run_files = [p for p in result.run_dir.rglob("*") if p.is_file()]
    assert run_files
    for p in run_files:
        assert p.suffix not in (".npy", ".npz") and "noise_seed" not in p.name, p
        assert str(SEED) not in p.read_text(encoding="utf-8"), p
        assert ".PRIVATE" not in str(p.relative_to(result.run_dir))
    assert "noise_seed: null" in (result.run_dir / "config.yaml").read_text()
    texts, names, counts = _private(cfg)
    assert scan_for_private(result.run_dir, texts) == []
    assert find_class_counts(result.run_dir, names, counts) == []
