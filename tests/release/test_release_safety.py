"""What leaves with `augpe release` carries nothing that varies with the private data or the
machine: one constant timestamp and fixed permissions on every file and folder, no request-cache
statistics or paths in summary.json, no absolute path or ".PRIVATE" in any file's contents, no
paths in the dataset card, no private text or count in a refusal; leftovers of a killed release
are removed; and a resumed run's generation totals (and max_cost) count every invocation."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fakes.pe import (
    FILLER_WORDS,
    FakeLLM,
    HashEmbedder,
    private_rows,
    public_pool,
    small_config,
    write_jsonl,
)

from augpe.cli import main
from augpe.config import Config
from augpe.llm.base import Generation, GenerationRequest, OnResult, Usage
from augpe.llm.cache import wrap_with_cache
from augpe.llm.cost import Budget, BudgetExceeded, CostMeter, Metered, Prices
from augpe.records.data import load_private_data
from augpe.release import export
from augpe.release.export import FORMATS, release_dataset
from augpe.release.staging import DEFAULT_EPOCH, MARKER, staging
from augpe.release.verify import ReleaseError, find_class_counts, release
from augpe.runner.compose import RunResult, run

REPO = Path(__file__).resolve().parents[2]


def _config(tmp: Path, name: str = "run", **sections: Any) -> Config:
    # Unequal classes (100 vs 125), so a leaked count vector is recognisable.
    rows = [
        r for i, r in enumerate(private_rows(250, seed=3)) if r["label"] == "posclass" or i % 5 != 1
    ]
    tmp.mkdir(parents=True, exist_ok=True)
    data = tmp / "private.jsonl"
    if not data.exists():
        write_jsonl(data, rows)
    return small_config(data, tmp / name, 2.0, **sections)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, RunResult]:
    cfg = _config(tmp_path_factory.mktemp("safety"))
    result = run(cfg, show_progress=False, llm=FakeLLM(public_pool(40)), embedder=HashEmbedder(64))
    # The run folder's files get distinct, recent times and a private mode, as a real run's do.
    for i, p in enumerate(sorted(result.run_dir.rglob("*"))):
        os.utime(p, (1_700_000_000 + 37 * i, 1_700_000_000 + 37 * i))
        if p.is_file():
            p.chmod(0o600)
    return cfg, result


def _tree(root: Path) -> list[Path]:
    return [root, *sorted(root.rglob("*"))]


def _copy_run(result: RunResult, tmp: Path) -> Path:
    copy = tmp / "run"
    shutil.copytree(result.run_dir, copy)
    return copy


# ---- 1. file metadata: one timestamp, fixed permissions -----------------------------------------
@pytest.mark.parametrize("state", [False, True], ids=["plain", "state"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_released_file_and_folder_carries_one_constant_timestamp(
    finished: tuple[Config, RunResult], tmp_path: Path, fmt: str, state: bool
) -> None:
    if fmt == "hf":
        pytest.importorskip("datasets", reason="--format hf needs the datasets package")
    _, result = finished
    out = tmp_path / "out"
    argv = ["release", str(result.run_dir), str(out), "--format", fmt] + ["--state"] * state
    assert main(argv) == 0
    tree = _tree(out)
    assert any(p.name == "synthetic.jsonl" for p in tree) and len(tree) > 5
    assert (out / "state").is_dir() == state
    assert {p.stat().st_mtime for p in tree} == {DEFAULT_EPOCH}, [
        (str(p.relative_to(out)), p.stat().st_mtime)
        for p in tree
        if p.stat().st_mtime != DEFAULT_EPOCH
    ]
    for p in tree:  # nothing of the run folder's metadata: fixed modes
        assert stat.S_IMODE(p.stat().st_mode) == (0o755 if p.is_dir() else 0o644), p
    assert not [p for p in tree if p.suffix in (".zip", ".tar", ".gz", ".tgz")]  # no archive


def test_source_date_epoch_sets_the_one_timestamp(
    finished: tuple[Config, RunResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, result = finished
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234567890")
    release(result.run_dir, tmp_path / "out", include_state=True)
    assert {p.stat().st_mtime for p in _tree(tmp_path / "out")} == {1234567890}


# ---- 2. summary.json: no request-cache statistics, no paths ---------------------------------------
def _keys(obj: Any) -> set[str]:
    if isinstance(obj, dict):
        return set(obj) | {k for v in obj.values() for k in _keys(v)}
    if isinstance(obj, list):
        return {k for v in obj for k in _keys(v)}
    return set()


def test_summary_holds_no_cache_statistics_or_path_and_timings_keep_them(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    cache = tmp_path / "cache" / "requests.sqlite"
    llm = wrap_with_cache(FakeLLM(public_pool(40)), cache)
    try:
        result = run(cfg, show_progress=False, llm=llm, embedder=HashEmbedder(64))
    finally:
        llm.close()
    summary_text = (result.run_dir / "summary.json").read_text()
    summary = json.loads(summary_text)
    assert not [k for k in _keys(summary) if k.startswith("cache_")], summary
    assert str(tmp_path) not in summary_text and "sqlite" not in summary_text
    assert summary["generation"]["requests"] > 0 and "cost" not in summary  # paid: cache-dependent
    timings = json.loads((result.run_dir / "timings.json").read_text())  # the operator's
    assert timings["request_cache"]["cache_path"] == str(cache)
    assert timings["request_cache"]["cache_misses"] == summary["generation"]["requests"]
    assert "cost" in timings["cost"]
    files = release_dataset(result.run_dir, tmp_path / "out")
    released = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert released == summary and "timings.json" not in {f.name for f in files}


def test_the_released_totals_are_the_same_whether_the_cache_answered_or_not(
    tmp_path: Path,
) -> None:
    """Cache hits come from other runs, which this run's ledger does not book: the released
    generation totals count every answer, so a warm cache changes nothing in summary.json."""
    cache = tmp_path / "cache" / "requests.sqlite"
    summaries = []
    for name in ("cold", "warm"):
        llm = wrap_with_cache(FakeLLM(public_pool(40)), cache)
        try:
            result = run(
                _config(tmp_path, name), show_progress=False, llm=llm, embedder=HashEmbedder(64)
            )
        finally:
            llm.close()
        summaries.append(json.loads((result.run_dir / "summary.json").read_text()))
        hits = json.loads((result.run_dir / "timings.json").read_text())["request_cache"]
        assert (hits["cache_hits"] > 0) == (name == "warm")
    assert summaries[0]["generation"] == summaries[1]["generation"]


# ---- 3. the content scan: no machine path, no ".PRIVATE" ------------------------------------------
@pytest.mark.parametrize(
    ("plant", "found"),
    [
        (lambda run, cfg: str(run.resolve()), "the run folder"),
        (lambda run, cfg: str(Path(cfg.data.path).resolve()), "the private data"),
        (lambda run, cfg: str(Path.home() / "notes.txt"), "the home folder"),
        (lambda run, cfg: "see run.PRIVATE/cache", "mention a PRIVATE folder"),
    ],
    ids=["run-folder", "private-data", "home", "private-mark"],
)
def test_release_refuses_a_machine_path_or_private_mark_in_any_file(
    finished: tuple[Config, RunResult], tmp_path: Path, plant: Any, found: str
) -> None:
    cfg, result = finished
    run_copy = _copy_run(result, tmp_path)
    text = plant(run_copy, cfg)
    summary = json.loads((run_copy / "summary.json").read_text())
    summary["note"] = text
    (run_copy / "summary.json").write_text(json.dumps(summary))
    for do in (
        lambda out: release(run_copy, out),
        lambda out: release_dataset(run_copy, out, "csv"),
    ):
        with pytest.raises(ReleaseError, match=f"summary.json: .*{found}") as err:
            do(tmp_path / "out")
        assert text not in str(err.value).split(":\n", 1)[1]
        assert not (tmp_path / "out").exists()


def test_a_run_with_its_own_private_dir_releases_without_naming_it(tmp_path: Path) -> None:
    cfg = _config(tmp_path, output={"private_dir": str(tmp_path / "elsewhere.PRIVATE")})
    result = run(cfg, show_progress=False, llm=FakeLLM(public_pool(40)), embedder=HashEmbedder(64))
    release_dataset(result.run_dir, tmp_path / "out")
    released = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    assert released["output"]["private_dir"] is None  # null: the default, beside the run folder


# ---- 4. the dataset card names no path -------------------------------------------------------------
def test_card_quotes_the_release_command_without_paths(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    _, result = finished
    out = tmp_path / "out"
    assert main(["release", str(result.run_dir), str(out), "--format", "csv", "--state"]) == 0
    card = (out / "README.md").read_text()
    assert "released with `augpe release RUN_DIR OUT --format csv --state`" in card
    for p in _tree(out):
        if p.is_file():
            text = p.read_bytes().decode("utf-8", errors="replace")
            for path in (str(result.run_dir), str(out), str(tmp_path), str(Path.home())):
                assert path not in text, (p.name, path)


# ---- 5. refusals name files, never private text or counts ----------------------------------------
def test_a_refusal_holds_no_private_text_no_record_number_and_no_count(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    cfg, result = finished
    texts = load_private_data(cfg.data).texts
    run_copy = _copy_run(result, tmp_path)
    with open(run_copy / "synthetic.jsonl", "a", encoding="utf-8") as f:
        for i in range(17, 42):  # 25 records: more than a refusal lists
            row = {"id": f"x{i}", "text": f"Intro. {texts[i]} outro", "class": "posclass"}
            f.write(json.dumps(row) + "\n")
    summary = json.loads((run_copy / "summary.json").read_text())
    summary["records_per_class"] = {"negclass": 100, "posclass": 125}
    (run_copy / "summary.json").write_text(json.dumps(summary))
    for do in (
        lambda: release(run_copy, tmp_path / "o1"),
        lambda: release_dataset(run_copy, tmp_path / "o2", "parquet"),
    ):
        with pytest.raises(ReleaseError) as err:
            do()
        findings = re.sub(r"\(first at line \d+\)", "", str(err.value).split(":\n", 1)[1])
        assert "synthetic.jsonl: contains a private record verbatim" in findings
        assert "summary.json#0.records_per_class: equals the clean class counts" in findings
        assert not [t for t in texts if t[:25] in findings]
        assert "#17" not in findings and "more" not in findings
        assert "100" not in findings and "125" not in findings and "225" not in findings


def test_with_one_class_a_released_count_equal_to_n_is_found(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps({"records": {"all": 225}, "sizes": [225]}))
    found = find_class_counts(tmp_path, ["all"], [225])
    assert [f.split(":")[0] for f in found] == ["s.json#0.records", "s.json#0.sizes"]
    assert not [f for f in found if "225" in f]
    assert find_class_counts(tmp_path, ["all"], [40]) == []


def test_release_docstrings_do_not_say_n_is_public() -> None:
    for name in ("verify.py", "scan.py", "card.py"):
        text = (REPO / "augpe" / "release" / name).read_text()
        assert "delta rule makes public" not in text and "public by the delta rule" not in text
        assert "can be read back from delta" not in text


# ---- 6. leftovers of a killed release --------------------------------------------------------------
def _killed_release(out: Path, kinds: tuple[str, ...] = ("export",)) -> list[Path]:
    """The staging folders a release killed after copying leaves: complete, unverified."""
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from augpe.release.staging import staging\n"
        "held = []\n"
        f"for kind in {kinds!r}:\n"
        "    held.append(staging(Path(sys.argv[1]), kind))\n"
        "    work = held[-1].__enter__()\n"
        "    (work / 'release').mkdir()\n"
        "    (work / 'release' / 'synthetic.jsonl').write_text('a complete, unverified copy')\n"
        "    print(work, flush=True)\n"
        "os._exit(0)  # killed: no cleanup runs\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(out)], capture_output=True, text=True, check=True
    )
    return [Path(line) for line in done.stdout.split()]


def test_the_next_release_removes_a_killed_releases_staging_folder(
    finished: tuple[Config, RunResult], tmp_path: Path
) -> None:
    _, result = finished
    out = tmp_path / "out"
    stale = _killed_release(out, ("export", "staging"))
    assert len(stale) == 2 and all(p.is_dir() and p.name.startswith(".out.") for p in stale)
    # Not provably ours, or still being built: kept.
    unmarked = tmp_path / ".out.abcd1234.export"
    unmarked.mkdir()
    (other_out,) = _killed_release(tmp_path / "other")
    alive = tmp_path / ".out.zzzz9999.export"
    alive.mkdir()
    (alive / MARKER).write_text(
        json.dumps({"out": "out", "pid": os.getpid(), "host": socket.gethostname()})
    )
    assert main(["release", str(result.run_dir), str(out)]) == 0
    assert not [p for p in stale if p.exists()]
    assert unmarked.is_dir() and other_out.is_dir() and alive.is_dir()
    assert (out / "synthetic.jsonl").is_file() and not (out / MARKER).exists()


def test_staging_is_removed_whatever_stops_the_release(
    finished: tuple[Config, RunResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, result = finished

    def broken(*args: object, **kw: object) -> list[Path]:
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "write_table", broken)
    with pytest.raises(KeyboardInterrupt):
        release_dataset(result.run_dir, tmp_path / "out", "csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    with staging(tmp_path / "x", "staging") as work:
        assert (work / MARKER).is_file()
    assert not work.exists()


# ---- 7. generation totals over every invocation of a run -------------------------------------------
class Killed(Exception):
    pass


class PricedLLM(Metered):
    """A paid backend whose answers are functions of their requests (a resume asks the same);
    each answer costs its max_tokens, so a batch's worst case is what it costs."""

    name = "priced-fake"

    def __init__(self, budget: Budget, kill_at: int = 0) -> None:
        self.usage = Usage()
        self.meter = CostMeter(Prices(input_per_1k=0.0, output_per_1k=1.0), budget)
        self.calls, self.kill_at, self.sent = 0, kill_at, 0
        self.batches: list[float] = []

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        desc: str = "",
        on_result: OnResult | None = None,
    ) -> list[Generation]:
        self.calls += 1
        if self.calls == self.kill_at:
            raise Killed(f"killed at generate call {self.calls}")
        out = []
        with self.metered(requests, desc):
            self.sent += len(requests)
            for i, r in enumerate(requests):
                rng = np.random.default_rng([zlib.crc32(str(r.messages).encode()), r.seed])
                words = " ".join(FILLER_WORDS[j] for j in rng.integers(len(FILLER_WORDS), size=12))
                g = Generation(
                    text=words.capitalize() + ".", completion_tokens=r.max_tokens, model=self.name
                )
                self.count(i, g, desc, on_result)
                out.append(g)
        self.batches.append(sum(r.max_tokens for r in requests) / 1000.0)
        return out


def _small(tmp: Path, name: str) -> Config:
    data = tmp / "d.jsonl"
    if not data.exists():
        write_jsonl(data, private_rows(60))
    return small_config(data, tmp / name, pe={"iterations": 3, "samples": 10, "variations": 3})


def _totals(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the released generation totals, what the run paid: the operator's timings)."""
    s = json.loads((run_dir / "summary.json").read_text())
    keys = ("requests", "prompt_tokens", "completion_tokens")
    cost = json.loads((run_dir / "timings.json").read_text())["cost"]
    return {k: s["generation"][k] for k in keys}, cost


def test_resuming_a_finished_run_keeps_its_totals(tmp_path: Path) -> None:
    cfg = _small(tmp_path, "run")
    first = PricedLLM(Budget())
    run(cfg, show_progress=False, llm=first, embedder=HashEmbedder())
    generation, cost = _totals(tmp_path / "run")
    assert generation["requests"] == first.usage.requests > 0 and cost["cost"] > 0
    again = PricedLLM(Budget())
    run(cfg, resume=True, show_progress=False, llm=again, embedder=HashEmbedder())
    assert again.sent == 0  # finished: nothing asked again
    assert _totals(tmp_path / "run") == (generation, cost)
    files = release(tmp_path / "run", tmp_path / "out", include_state=True)
    assert "spend.json" not in {f.name for f in files}  # the running totals stay with the run


def test_max_cost_and_the_totals_count_what_earlier_invocations_spent(tmp_path: Path) -> None:
    reference = PricedLLM(Budget())
    run(_small(tmp_path, "ref"), show_progress=False, llm=reference, embedder=HashEmbedder())
    last = reference.calls  # killed before its last batch: every earlier one was paid
    cfg = _small(tmp_path, "run")
    killed = PricedLLM(Budget(), kill_at=last)
    with pytest.raises(Killed):
        run(cfg, show_progress=False, llm=killed, embedder=HashEmbedder())
    paid = killed.meter.cost
    assert paid == pytest.approx(sum(reference.batches[:-1])) and paid > 0
    # The budget is the run's: what is left after `paid` cannot cover the last batch.
    short = PricedLLM(Budget(max_cost=paid + reference.batches[-1] / 2))
    with pytest.raises(BudgetExceeded):
        run(cfg, resume=True, show_progress=False, llm=short, embedder=HashEmbedder())
    assert short.sent == 0
    enough = PricedLLM(Budget(max_cost=paid + reference.batches[-1] * 1.01))
    run(cfg, resume=True, show_progress=False, llm=enough, embedder=HashEmbedder())
    assert enough.meter.budget.spent == pytest.approx(sum(reference.batches))
    assert _totals(tmp_path / "run") == _totals(tmp_path / "ref")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_run_with_a_huge_epsilon_is_refused_naming_out_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    cfg = _config(tmp_path, privacy={"epsilon": 1e6})
    run(cfg, show_progress=False, llm=FakeLLM(public_pool(40)), embedder=HashEmbedder(64))
    out = tmp_path / "out"
    assert main(["release", str(cfg.output.dir), str(out), "--format", fmt]) == 2
    err = capsys.readouterr().err
    assert f"nothing written to {out}:" in err and "staging" not in err and ".export" not in err
    assert "equals the clean class counts" in err and "noise too small" in err
    assert not out.exists()
