"""The mechanism's guarantees that no single release shows: the same noise is never drawn on two
different inputs, each release states its replace-one sensitivity, and no module but the mechanism
draws Gaussian or Laplace noise."""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import numpy as np
import pytest

from augpe.cli import main
from augpe.privacy import GaussianMechanism, GaussianRelease, Ledger, PrivacyStateError, RunSecret
from augpe.privacy.accounting import gdp_epsilon
from augpe.privacy.centroids import class_embedding_sums
from augpe.privacy.vote import VoteTally, class_histogram, vote_histogram

REPO = Path(__file__).resolve().parents[2]


def _mechanism(tmp: Path, secret: RunSecret) -> GaussianMechanism:
    ledger = Ledger(1e-5, 4.0, run_nonce=secret.nonce)
    return GaussianMechanism(ledger, tmp / "ledger.json", tmp / "state", secret)


# ---- a lost stored value is never redrawn on another histogram --------------------------------
def test_a_lost_vote_is_not_redrawn_on_other_candidates(tmp_path: Path) -> None:
    secret = RunSecret.new(tmp_path / "priv", "fp", None)
    mech = _mechanism(tmp_path, secret)
    ev = GaussianRelease("votes_t1", 2.0, iteration=1)
    texts = [["s0", 0, "a nice tea"], ["s1", 1, "stale chips"]]
    first = mech.release(
        ev, lambda: np.array([3.0, 1.0]), file="v.json", tag=["s0", "s1"], subject=texts
    )
    assert mech.ledger.get("votes_t1").input_digest  # booked with what it was drawn on
    (tmp_path / "state" / "v.json").unlink()  # the stored value is lost

    # same candidates: the very same draw again (nothing new is revealed)
    again = mech.release(
        ev, lambda: np.array([3.0, 1.0]), file="v.json", tag=["s0", "s1"], subject=texts
    )
    np.testing.assert_array_equal(again, first)
    (tmp_path / "state" / "v.json").unlink()

    # the population regenerated differently (same ids): the same noise on a new clean histogram
    # would give away the exact difference of the two clean histograms, so it is refused
    other = [["s0", 0, "a bitter tea"], ["s1", 1, "stale chips"]]
    with pytest.raises(PrivacyStateError, match="other inputs"):
        mech.release(
            ev, lambda: np.array([2.0, 2.0]), file="v.json", tag=["s0", "s1"], subject=other
        )
    assert not (tmp_path / "state" / "v.json").exists()


def test_the_digest_survives_a_saved_and_reloaded_ledger(tmp_path: Path) -> None:
    secret = RunSecret.new(tmp_path / "priv", "fp", None)
    mech = _mechanism(tmp_path, secret)
    ev = GaussianRelease("votes_t1", 2.0, iteration=1)
    mech.release(ev, lambda: np.ones(2), file="v.json", tag=["a", "b"], subject=["x", "y"])
    (tmp_path / "state" / "v.json").unlink()
    reloaded = GaussianMechanism(
        Ledger.load(tmp_path / "ledger.json"), tmp_path / "ledger.json", tmp_path / "state", secret
    )
    with pytest.raises(PrivacyStateError, match="other inputs"):
        reloaded.release(ev, lambda: np.ones(2), file="v.json", tag=["a", "b"], subject=["x", "z"])


# ---- replace-one: stated per release, and true ---------------------------------------------------
def test_replace_one_moves_a_non_negative_release_by_at_most_sqrt2_and_the_centroids_by_2() -> None:
    rng = np.random.default_rng(0)
    # class counts: one record moved from class 0 to class 1
    a = class_histogram(np.array([0, 0, 1]), 2)
    b = class_histogram(np.array([1, 0, 1]), 2)
    assert np.linalg.norm(a - b) == pytest.approx(math.sqrt(2))
    # votes (k = 4): replace one record by one that votes for other candidates, in another class
    priv = rng.normal(size=(20, 8))
    syn = rng.normal(size=(12, 8))
    syn_cls = np.repeat([0, 1], 6)
    cls = rng.integers(0, 2, 20)
    base = vote_histogram(priv, cls, syn, syn_cls, k=4)
    moved = priv.copy()
    moved[0] = -priv[0]
    cls2 = cls.copy()
    cls2[0] = 1 - cls[0]
    after = vote_histogram(moved, cls2, syn, syn_cls, k=4)
    assert np.linalg.norm(base - after) <= math.sqrt(2) + 1e-9
    # centroids: a unit embedding replaced by its opposite moves the sum by 2, not sqrt(2)
    e = rng.normal(size=(3, 8))
    e2 = e.copy()
    e2[0] = -e[0]
    diff = class_embedding_sums(e, np.zeros(3, int), 1) - class_embedding_sums(
        e2, np.zeros(3, int), 1
    )
    assert np.linalg.norm(diff) == pytest.approx(2.0)
    # ... and that is what each release says of itself
    assert GaussianRelease("centroids", 3.0, kind="centroids").replace_one_sensitivity == 2.0
    for kind in ("vote_histogram", "class_counts", "keywords", "lengths"):
        r = GaussianRelease(kind, 3.0, kind=kind)
        assert r.replace_one_sensitivity == pytest.approx(math.sqrt(2))


def test_the_ledger_prices_replace_one_from_each_release_and_budget_prints_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = Ledger(1e-6, 10.0, run_nonce="n")
    for e in (
        GaussianRelease("class_counts", 8.0, kind="class_counts"),
        GaussianRelease("votes_t1", 4.0, iteration=1),
        GaussianRelease("centroids", 5.0, kind="centroids"),
    ):
        ledger.record(e)
    mu = math.sqrt(2 / 64 + 2 / 16 + 4 / 25)
    assert ledger.replace_one_epsilon() == pytest.approx(gdp_epsilon(mu, 1e-6))
    assert ledger.replace_one_epsilon() > ledger.epsilon()
    ledger.save(tmp_path / "ledger.json")
    assert (
        Ledger.load(tmp_path / "ledger.json").replace_one_epsilon() == ledger.replace_one_epsilon()
    )
    assert main(["budget", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"under replace-one instead: eps = {ledger.replace_one_epsilon():.4f}" in out
    assert "centroids [centroids]: sigma = 5.0000 (sensitivity 1, 2 under replace-one" in out


# ---- the exact tally takes contributions in [0, 1], as it says ----------------------------------
def test_the_vote_tally_refuses_contributions_above_one() -> None:
    VoteTally.of_values(np.array([0]), np.array([1.0]), 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        VoteTally.of_values(np.array([0]), np.array([1.5]), 1)


# ---- structure: one mechanism draws all noise --------------------------------------------------
NOISE_DRAWS = {
    "normal",
    "standard_normal",
    "multivariate_normal",
    "lognormal",
    "laplace",
    "gauss",
    "normalvariate",
    "randn",
    "normal_",
    "add_gaussian_noise",
}
"""Calls that draw Gaussian or Laplace noise, by any library (numpy, random, torch)."""
ALLOWED = {
    ("augpe/privacy/mechanism.py", "normal"),  # the one Gaussian mechanism
    (
        "augpe/pe/textops.py",
        "normal",
    ),  # the synthetic texts' target-length jitter (no private data)
}


def test_only_the_mechanism_draws_noise_or_records_releases() -> None:
    """Noise drawn <=> event recorded: no other module draws Gaussian or Laplace noise, calls the
    noise function or records a release in the ledger."""
    offenders = []
    for path in sorted((REPO / "augpe").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = None
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
                owner = f.value if isinstance(f, ast.Attribute) else None
                if name == "record" and not (
                    isinstance(owner, ast.Attribute) and owner.attr == "meter"
                ):
                    name = "ledger.record"
            elif isinstance(node, ast.ImportFrom):
                hit = [a.name for a in node.names if a.name in NOISE_DRAWS]
                name = hit[0] if hit else None
            if (
                name in ("add_gaussian_noise", "ledger.record")
                and rel == "augpe/privacy/mechanism.py"
            ):
                continue
            if (name in NOISE_DRAWS or name == "ledger.record") and (rel, name) not in ALLOWED:
                offenders.append(f"{rel}:{node.lineno} {name}")
    assert offenders == []


def test_budget_prices_the_ledger_with_an_accountant_chosen_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("dp_accounting", reason="the PLD accountant needs dp-accounting")
    ledger = Ledger(1e-6, 10.0, run_nonce="n")
    ledger.record(GaussianRelease("votes_t1", 3.0, iteration=1))
    ledger.record(GaussianRelease("centroids", 5.0, kind="centroids"))
    ledger.save(tmp_path / "ledger.json")
    assert main(["budget", str(tmp_path), "--accountant", "pld"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("accountant pld"))
    pld, pld_r1 = (float(v) for v in re.findall(r"eps = ([\d.]+)", line))
    assert pld == pytest.approx(ledger.epsilon(), rel=0.01)
    assert pld_r1 == pytest.approx(ledger.replace_one_epsilon(), rel=0.01)
    assert main(["budget", str(tmp_path)]) == 0  # gdp, the run's own: no second line
    assert "accountant" not in capsys.readouterr().out
