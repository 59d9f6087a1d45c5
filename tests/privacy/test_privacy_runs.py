"""The guarantee survives re-runs, resumes and a hostile reviewer. Real pipeline runs with the fast
fakes; no monkeypatching of the code under test except to count or interrupt noise draws."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from fakes.pe import FakeLLM, HashEmbedder, private_rows, public_pool, small_config, write_jsonl

from augpe.errors import AugpeError, ConfigError
from augpe.privacy import (
    GaussianMechanism,
    GaussianRelease,
    Ledger,
    PrivacyStateError,
    RunSecret,
)
from augpe.privacy import mechanism as mech_module
from augpe.privacy.accounting import DEFAULT_DELTA, default_delta
from augpe.release.verify import RELEASE_FILES, artefact_table, release
from augpe.runner import compose as pipeline

REPO = Path(__file__).resolve().parents[2]


def _data(tmp: Path, n: int = 60, name: str = "d.jsonl") -> Path:
    path = tmp / name
    if not path.exists():
        write_jsonl(path, private_rows(n))
    return path


def _run(tmp: Path, out: str, eps: float, data: Path | None = None, **privacy: object):
    cfg = small_config(
        data or _data(tmp),
        tmp / out,
        eps,
        privacy={"noise_seed": None, "class_counts": "uniform", **privacy},
        pe={"iterations": 1, "samples": 12, "variations": 2, "k": 1},
    )
    return cfg, pipeline.run(
        cfg, show_progress=False, llm=FakeLLM(public_pool(20)), embedder=HashEmbedder(32)
    )


def _votes(run_dir: Path) -> tuple[dict[str, float], float]:
    raw = json.loads((run_dir / "state" / "votes_01.json").read_text())
    return dict(zip(raw["tag"], raw["noisy"])), raw["sigma"]


def _solved(a: tuple[dict[str, float], float], b: tuple[dict[str, float], float]) -> list[float]:
    """h = (s2 n1 - s1 n2) / (s2 - s1): the clean votes, if both runs used the same noise."""
    (n1, s1), (n2, s2) = a, b
    common = sorted(set(n1) & set(n2))
    assert len(common) >= 10 and s1 != s2
    return [(s2 * n1[i] - s1 * n2[i]) / (s2 - s1) for i in common]


def _is_clean(h: list[float]) -> bool:  # k = 1: clean votes are whole numbers
    return max(abs(x - round(x)) for x in h) < 1e-6


# ---- 1. noise reused across fresh runs ------------------------------------------------------
def test_two_fresh_runs_sharing_a_private_folder_draw_independent_noise(tmp_path: Path) -> None:
    _run(tmp_path, "x", 1.0)
    first = _votes(tmp_path / "x")
    shutil.rmtree(tmp_path / "x")  # the user deletes the run and keeps x.PRIVATE
    _run(tmp_path, "x", 4.0)
    assert not _is_clean(_solved(first, _votes(tmp_path / "x")))


def test_run_folders_sharing_one_private_dir_draw_independent_noise(tmp_path: Path) -> None:
    shared = str(tmp_path / "shared.PRIVATE")
    for name, eps in (("a", 1.0), ("b", 4.0)):
        cfg = small_config(
            _data(tmp_path),
            tmp_path / name,
            eps,
            privacy={"noise_seed": None, "class_counts": "uniform"},
            pe={"iterations": 1, "samples": 12, "variations": 2},
            output={"dir": str(tmp_path / name), "private_dir": shared},
        )
        pipeline.run(
            cfg, show_progress=False, llm=FakeLLM(public_pool(20)), embedder=HashEmbedder(32)
        )
    assert not _is_clean(_solved(_votes(tmp_path / "a"), _votes(tmp_path / "b")))
    nonces = {json.loads((tmp_path / n / "ledger.json").read_text())["run_nonce"] for n in "ab"}
    assert len(nonces) == 2 and len(list((tmp_path / "shared.PRIVATE" / "runs").iterdir())) == 2


def test_resume_needs_its_own_private_record(tmp_path: Path) -> None:
    cfg, _ = _run(tmp_path, "x", 1.0)
    shutil.rmtree(tmp_path / "x.PRIVATE" / "runs")
    with pytest.raises(PrivacyStateError, match="cannot resume: the PRIVATE record of run"):
        pipeline.run(
            cfg,
            resume=True,
            show_progress=False,
            llm=FakeLLM(public_pool(20)),
            embedder=HashEmbedder(32),
        )


# ---- 2. a resume books the sigma actually used ------------------------------------------------
class Killed(Exception):
    pass


def test_resume_with_other_privacy_settings_is_refused(tmp_path: Path, monkeypatch) -> None:
    cfg = small_config(_data(tmp_path), tmp_path / "r", 4.0, pe={"iterations": 3, "samples": 12})
    real = mech_module.add_gaussian_noise
    calls = []

    def die_on_the_third(h, s, r):
        calls.append(s)
        if len(calls) == 3:
            raise Killed
        return real(h, s, r)

    monkeypatch.setattr(mech_module, "add_gaussian_noise", die_on_the_third)
    with pytest.raises(Killed):
        pipeline.run(
            cfg, show_progress=False, llm=FakeLLM(public_pool(20)), embedder=HashEmbedder(32)
        )
    monkeypatch.setattr(mech_module, "add_gaussian_noise", real)
    for key, value, shown in (
        ("epsilon", 1.0, "epsilon"),
        ("delta", 1e-6, "delta"),
        ("schedule", "linear", "weights"),
        ("class_count_share", 0.2, "count_share"),
    ):
        other = cfg.model_copy(deep=True)
        setattr(other.privacy, key, value)
        with pytest.raises(ConfigError, match=f"privacy settings differ.*{shown}"):
            pipeline.run(
                other,
                resume=True,
                show_progress=False,
                llm=FakeLLM(public_pool(20)),
                embedder=HashEmbedder(32),
            )
    other = cfg.model_copy(deep=True)
    other.pe.iterations = 2
    with pytest.raises(ConfigError, match="weights"):
        pipeline.run(
            other,
            resume=True,
            show_progress=False,
            llm=FakeLLM(public_pool(20)),
            embedder=HashEmbedder(32),
        )
    # The right resume completes, and every stored value is booked with the sigma it was drawn with.
    done = pipeline.run(
        cfg,
        resume=True,
        show_progress=False,
        llm=FakeLLM(public_pool(20)),
        embedder=HashEmbedder(32),
    )
    booked = {e.name: e.sigma for e in done.ledger.events}
    for f in (tmp_path / "r" / "state").glob("*.json"):
        raw = json.loads(f.read_text())
        if "sigma" in raw:
            assert booked[raw["name"]] == raw["sigma"]
    assert done.ledger.epsilon() <= 4.0


def test_a_stored_release_drawn_with_another_sigma_is_refused(tmp_path: Path) -> None:
    ledger = Ledger(delta=1e-5, target_epsilon=4.0, run_nonce="n1")
    secret = RunSecret("n1", 7, "fp")
    mech = GaussianMechanism(ledger, tmp_path / "ledger.json", tmp_path / "state", secret)
    mech.release(GaussianRelease("votes_t1", 1.17, iteration=1), lambda: np.zeros(4), file="v.json")
    fresh = Ledger(delta=1e-5, target_epsilon=4.0, run_nonce="n1")
    again = GaussianMechanism(fresh, tmp_path / "ledger2.json", tmp_path / "state", secret)
    with pytest.raises(PrivacyStateError, match="drawn with sigma=1.17, this run asks sigma=6.57"):
        again.release(
            GaussianRelease("votes_t1", 6.57, iteration=1), lambda: np.zeros(4), file="v.json"
        )
    assert fresh.events == []  # nothing booked at the wrong sigma
    other_run = Ledger(delta=1e-5, target_epsilon=4.0, run_nonce="n2")
    thief = GaussianMechanism(
        other_run, tmp_path / "l3.json", tmp_path / "state", RunSecret("n2", 8, "fp")
    )
    with pytest.raises(PrivacyStateError, match="belongs to another run"):
        thief.release(
            GaussianRelease("votes_t1", 1.17, iteration=1), lambda: np.zeros(4), file="v.json"
        )


def test_the_event_is_in_the_saved_ledger_before_the_noise_is_drawn(
    tmp_path: Path, monkeypatch
) -> None:
    ledger = Ledger(delta=1e-5, target_epsilon=4.0, run_nonce="n1")
    path = tmp_path / "ledger.json"
    mech = GaussianMechanism(ledger, path, tmp_path / "state", RunSecret("n1", 7, "fp"))
    seen = []
    monkeypatch.setattr(
        mech_module,
        "add_gaussian_noise",
        lambda h, s, r: (
            seen.append([e["name"] for e in json.loads(path.read_text())["events"]]) or h
        ),
    )
    mech.release(GaussianRelease("votes_t1", 2.0, iteration=1), lambda: np.zeros(3), file="v.json")
    assert seen == [["votes_t1"]]


def test_a_crash_between_booking_and_storing_redraws_the_same_noise(
    tmp_path: Path, monkeypatch
) -> None:
    secret = RunSecret("n1", 7, "fp")
    ev = GaussianRelease("votes_t1", 2.0, iteration=1)
    a = GaussianMechanism(
        Ledger(1e-5, 4.0, run_nonce="n1"), tmp_path / "a.json", tmp_path / "sa", secret
    )
    first = a.release(ev, lambda: np.arange(5.0), file="v.json")
    monkeypatch.setattr(mech_module, "write_json", lambda p, o: (_ for _ in ()).throw(Killed()))
    b = GaussianMechanism(
        Ledger(1e-5, 4.0, run_nonce="n1"), tmp_path / "b.json", tmp_path / "sb", secret
    )
    with pytest.raises(Killed):
        b.release(ev, lambda: np.arange(5.0), file="v.json")
    monkeypatch.undo()
    booked = b.ledger.get("votes_t1")  # booked although the value was never stored
    assert booked is not None and (booked.name, booked.sigma) == (ev.name, ev.sigma)
    again = b.release(ev, lambda: np.arange(5.0), file="v.json")
    np.testing.assert_array_equal(again, first)  # not new noise: the very same draw


# ---- 3. N is never published, and the budget is fixed before the data is read ----------------
def test_delta_and_every_sigma_are_the_same_whatever_the_data_size(tmp_path: Path) -> None:
    """Without privacy.delta, delta comes from public inputs only: runs on 60 and on 600 records
    (class counts released) book the same delta and the same sigmas."""
    ledgers = []
    for n in (60, 600):
        data = _data(tmp_path, n, f"d{n}.jsonl")
        cfg = small_config(data, tmp_path / f"n{n}", 2.0, privacy={"noise_seed": None})
        r = pipeline.run(
            cfg, show_progress=False, llm=FakeLLM(public_pool(20)), embedder=HashEmbedder(32)
        )
        assert "private_records" not in r.summary
        ledgers.append(r.ledger)
    assert ledgers[0].delta == ledgers[1].delta == DEFAULT_DELTA
    assert [(e.name, e.sigma) for e in ledgers[0].events] == [
        (e.name, e.sigma) for e in ledgers[1].events
    ]
    assert "before any data was read" in ledgers[0].delta_rule


def test_a_public_population_bound_sets_delta_and_a_larger_dataset_is_refused(
    tmp_path: Path,
) -> None:
    _, result = _run(tmp_path, "b", 2.0, population_bound=100)
    assert result.ledger.delta == default_delta(100)
    assert "M = 100" in result.ledger.delta_rule
    with pytest.raises(ConfigError, match="population_bound=50 is not an upper bound") as err:
        _run(tmp_path, "b2", 2.0, population_bound=50)
    assert "60" not in str(err.value)
    assert not (tmp_path / "b2").exists()  # refused before the run folder is made


def test_without_class_counts_nothing_is_released_before_the_votes(tmp_path: Path) -> None:
    _, result = _run(tmp_path, "u", 2.0)
    assert [e.kind for e in result.ledger.events] == ["vote_histogram"]
    assert result.ledger.epsilon() <= 2.0


def test_with_a_user_delta_adding_a_record_changes_no_published_setting(tmp_path: Path) -> None:
    rows = private_rows(61)
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    write_jsonl(small, rows[:60])
    write_jsonl(big, rows)
    ledgers = []
    for name, data in (("s", small), ("b", big)):
        cfg = small_config(
            data,
            tmp_path / name,
            2.0,
            privacy={"delta": 1e-5, "class_counts": "uniform"},
            pe={"iterations": 2, "samples": 12, "variations": 2},
        )
        r = pipeline.run(
            cfg, show_progress=False, llm=FakeLLM(public_pool(20)), embedder=HashEmbedder(32)
        )
        d = r.ledger.to_dict()
        d.pop("run_nonce")
        ledgers.append(d)
        assert not {"private_records"} & set(r.summary)
    assert ledgers[0] == ledgers[1]


def test_a_user_delta_of_one_over_n_or_more_is_warned_about_without_naming_n(
    tmp_path, caplog
) -> None:
    with caplog.at_level(logging.WARNING, logger="augpe"):
        _run(tmp_path, "w", 2.0, delta=0.05)
    msgs = [r.getMessage() for r in caplog.records if "not below 1/N" in r.getMessage()]
    assert msgs and "60" not in msgs[0]


def test_a_plan_over_budget_is_refused_before_any_noise_is_drawn(tmp_path, monkeypatch) -> None:
    draws = []
    monkeypatch.setattr(mech_module, "add_gaussian_noise", lambda h, s, r: draws.append(s) or h)
    from augpe.privacy import plan

    real = plan.vote_releases
    monkeypatch.setattr(
        plan,
        "vote_releases",
        lambda s, d, f: [
            GaussianRelease(e.name, e.sigma / 3, iteration=e.iteration) for e in real(s, d, f)
        ],
    )
    with pytest.raises(RuntimeError, match="budget exceeded"):
        _run(tmp_path, "p", 1.0)
    assert draws == []
    assert not list((tmp_path / "p" / "state").glob("*.json"))


# ---- 4. timings are not released -------------------------------------------------------------
def test_timings_stay_off_the_release_and_out_of_the_released_files(tmp_path: Path) -> None:
    _, result = _run(tmp_path, "t", 2.0)
    assert "timings.json" not in RELEASE_FILES
    assert (result.run_dir / "timings.json").is_file()  # kept for the operator
    out = tmp_path / "out"
    files = {p.name for p in release(result.run_dir, out)}
    assert "timings.json" not in files
    for line in (out / "iterations.jsonl").read_text().splitlines():
        assert "seconds" not in json.loads(line)
    summary = json.loads((out / "summary.json").read_text())
    assert not {"wall_seconds", "stages_seconds"} & set(summary)
    assert not {"seconds", "tokens_per_second"} & set(summary["generation"])


def test_the_released_config_holds_no_machine_path(tmp_path: Path) -> None:
    _, result = _run(tmp_path, "c", 2.0)
    out = tmp_path / "out"
    release(result.run_dir, out)
    for p in out.iterdir():
        assert str(tmp_path) not in p.read_text(), p.name
    assert "path: d.jsonl" in (out / "config.yaml").read_text()


def test_the_released_config_leaves_out_the_cluster_address() -> None:
    from augpe.release import public_config

    cfg = {
        "execution": {
            "engine": "ray",
            "address": "ray://10.0.0.7:10001",
            "runtime_env": {"pip": ["x"]},
        }
    }
    out = public_config(cfg)["execution"]
    assert out["engine"] == "ray" and "10.0.0.7" not in str(out) and "pip" not in str(out)
    assert cfg["execution"]["address"] == "ray://10.0.0.7:10001"  # the run's own config is kept


def test_readme_run_folder_table_is_the_release_allow_list() -> None:
    assert artefact_table() in (REPO / "docs" / "privacy.md").read_text(encoding="utf-8")


# ---- 7. smaller items --------------------------------------------------------------------------
def test_small_class_error_names_no_class_and_no_count(tmp_path: Path) -> None:
    rows = private_rows(40) + [{"text": "one lonely record of a tiny class here", "label": "tiny"}]
    data = write_jsonl(tmp_path / "small.jsonl", rows)
    cfg = small_config(data, tmp_path / "s", 2.0, data={"min_records_per_class": 3})
    with pytest.raises(AugpeError, match="below the threshold") as err:
        pipeline.run(
            cfg, show_progress=False, llm=FakeLLM(public_pool(5)), embedder=HashEmbedder(16)
        )
    assert "tiny" not in str(err.value) and "1" not in str(err.value).replace(str(data), "")
