"""Pins the privacy numbers: calibration against the papers, GDP against dp-accounting's PLD,
rounding to the safe side, budget splitting, validation and the ledger file."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from augpe.errors import ConfigError
from augpe.privacy import (
    GaussianRelease,
    Ledger,
    calibrate_sigma,
    default_delta,
    epsilon_for_sigma,
    epsilon_for_sigmas,
    gdp_delta,
    gdp_epsilon,
    gdp_mu,
    pld_epsilon,
    split_budget,
)
from augpe.privacy.mechanism import add_gaussian_noise

T = 10

REFERENCE_SIGMAS = [
    # (N, eps, sigma) from algorithm.md, delta = 1/(N ln N), T = 10
    (8396, 1.0, 11.60),
    (8396, 2.0, 6.22),
    (8396, 4.0, 3.38),
    (75316, 1.0, 13.26),
    (75316, 2.0, 7.01),
    (75316, 4.0, 3.75),
]


@pytest.mark.parametrize(("n", "eps", "sigma_ref"), REFERENCE_SIGMAS)
def test_reference_sigmas_reproduce(n: int, eps: float, sigma_ref: float) -> None:
    delta = default_delta(n)
    # Rounded up to 2 decimals, as the papers print them: exactly the published value.
    assert calibrate_sigma(eps, delta, T, decimals=2) == pytest.approx(sigma_ref, abs=1e-9)
    # At the default 4 decimals the sigma is at most one cent below the 2-decimal round-up.
    sigma = calibrate_sigma(eps, delta, T)
    assert sigma_ref - 0.01 <= round(sigma, 2) <= sigma_ref


@pytest.mark.parametrize(
    ("eps", "published_sigma", "published_overshoot"),
    [(1.0, 15.34, 1.004), (2.0, 8.03, 2.002), (4.0, 4.24, 4.005)],
)
def test_published_yelp_sigmas_overshoot_and_calibrator_returns_larger(
    eps: float, published_sigma: float, published_overshoot: float
) -> None:
    delta = default_delta(1_939_290)
    spent = epsilon_for_sigma(published_sigma, delta, T)
    assert spent > eps
    assert spent == pytest.approx(published_overshoot, abs=1e-3)
    sigma = calibrate_sigma(eps, delta, T)
    assert sigma > published_sigma
    assert epsilon_for_sigma(sigma, delta, T) <= eps


@pytest.mark.parametrize("eps", [0.1, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0])
@pytest.mark.parametrize("delta", [1e-3, 1e-5, 1e-7, 1e-10])
@pytest.mark.parametrize("iterations", [1, 3, 10, 40])
@pytest.mark.parametrize("decimals", [0, 2, 4])
def test_calibrated_sigma_never_exceeds_epsilon(
    eps: float, delta: float, iterations: int, decimals: int
) -> None:
    sigma = calibrate_sigma(eps, delta, iterations, decimals=decimals)
    assert epsilon_for_sigma(sigma, delta, iterations) <= eps
    # ... and it is tight: one unit less in the last decimal would overshoot (or be non-positive).
    smaller = sigma - 10.0**-decimals
    assert smaller <= 0 or epsilon_for_sigma(smaller, delta, iterations) > eps


def test_gdp_delta_is_stable_for_large_epsilon() -> None:
    for eps, mu in [(800.0, 40.0), (1e4, 1.0), (50.0, 0.5)]:
        d = gdp_delta(eps, mu)
        assert math.isfinite(d) and 0.0 <= d <= 1.0
    assert gdp_delta(800.0, 40.0) > 0.0  # not lost to underflow: the curve is still far from 0
    assert gdp_epsilon(math.inf, 1e-5) == math.inf
    assert gdp_epsilon(1e-6, 1e-5) == 0.0  # mu so small that delta is met at eps = 0
    # Where the naive formula does not overflow, the log-space one agrees with it.
    for eps, mu in [(1.0, 0.5), (2.0, 1.3), (4.0, 2.0)]:
        naive = norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2)
        assert gdp_delta(eps, mu) == pytest.approx(naive, rel=1e-9)


def test_gdp_mu_and_gdp_epsilon_are_inverse_on_the_safe_side() -> None:
    mu = gdp_mu(1.0, 1e-5)
    assert gdp_delta(1.0, mu) <= 1e-5
    eps = gdp_epsilon(mu, 1e-5)
    assert eps == pytest.approx(1.0, abs=1e-9)
    assert gdp_delta(eps, mu) <= 1e-5


def test_gdp_agrees_with_pld_for_constant_sigma() -> None:
    gdp = epsilon_for_sigma(10.0, 1e-5, 10)
    assert gdp == pytest.approx(1.199, abs=2e-3)
    assert pld_epsilon([10.0] * 10, 1e-5) == pytest.approx(gdp, rel=0.01)


def test_gdp_agrees_with_pld_for_varying_sigmas() -> None:
    sigmas = [4.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0]
    gdp = epsilon_for_sigmas(sigmas, 1e-6)
    assert pld_epsilon(sigmas, 1e-6) == pytest.approx(gdp, rel=0.01)


def test_epsilon_inf_means_no_noise_and_zero_sigma_costs_infinity() -> None:
    assert calibrate_sigma(math.inf, 1e-5, T) == 0.0
    assert split_budget(math.inf, 1e-5, T, 0.05) == (0.0, 0.0)
    assert epsilon_for_sigmas([5.0, 0.0], 1e-5) == math.inf


@pytest.mark.parametrize("count_share", [0.01, 0.05, 0.2])
def test_split_budget_stays_within_target_and_shares_mu_squared(count_share: float) -> None:
    eps, delta = 2.0, default_delta(8396)
    sigma_votes, sigma_counts = split_budget(eps, delta, T, count_share)
    assert sigma_counts is not None
    assert epsilon_for_sigmas([sigma_votes] * T + [sigma_counts], delta) <= eps
    # Votes get less than the whole budget, so more noise than without a split.
    assert sigma_votes > calibrate_sigma(eps, delta, T)
    # mu^2 shares: 1/sc^2 : T/sv^2 = c : (1 - c) (up to rounding of sigma).
    ratio = (1.0 / sigma_counts**2) / (T / sigma_votes**2)
    assert ratio == pytest.approx(count_share / (1.0 - count_share), rel=1e-3)
    # A share below one vote's worth (1/(T+1)) means the count release is the noisier one.
    if count_share < 1.0 / (T + 1):
        assert sigma_counts > sigma_votes


def test_split_budget_without_count_share_gives_all_to_votes() -> None:
    delta = default_delta(8396)
    assert split_budget(1.0, delta, T, None) == (calibrate_sigma(1.0, delta, T), None)


@pytest.mark.parametrize(
    ("call", "setting"),
    [
        (lambda: calibrate_sigma(0.0, 1e-5, 10), "epsilon must"),
        (lambda: calibrate_sigma(-1.0, 1e-5, 10), "epsilon must"),
        (lambda: calibrate_sigma(float("nan"), 1e-5, 10), "epsilon must"),
        (lambda: calibrate_sigma(1.0, 0.0, 10), "delta must"),
        (lambda: calibrate_sigma(1.0, 1.0, 10), "delta must"),
        (lambda: calibrate_sigma(1.0, 1e-5, 0), "iterations"),
        (lambda: calibrate_sigma(1.0, 1e-5, 10, share=0.0), "share"),
        (lambda: calibrate_sigma(1.0, 1e-5, 10, share=1.5), "share"),
        (lambda: split_budget(1.0, 1e-5, 10, 1.0), "class-count share"),
        (lambda: default_delta(1), "N >= 2"),
        (lambda: epsilon_for_sigmas([-1.0], 1e-5), "sigma"),
    ],
)
def test_the_maths_raises_value_errors_naming_the_quantity_not_a_config_key(
    call: Callable[[], object], setting: str
) -> None:
    with pytest.raises(ValueError, match=setting) as err:
        call()
    assert not isinstance(err.value, ConfigError) and "privacy." not in str(err.value)


def test_the_plan_translates_a_maths_error_into_a_config_error_naming_the_settings() -> None:
    from augpe.privacy import PrivacySettings, planned_releases
    from augpe.privacy.ledger import Neighbouring

    s = PrivacySettings(
        epsilon=1.0,
        delta=1e-5,
        weights=(1.0,),
        class_counts="dp",
        count_share=0.6,
        neighbouring=Neighbouring.RECORD,
        keyword_share=0.5,  # 0.6 + 0.5 of mu^2: nothing left for the votes
    )
    with pytest.raises(ConfigError, match="privacy .*shares"):
        planned_releases(s)


def test_default_delta_is_one_over_n_ln_n() -> None:
    assert default_delta(8396) == pytest.approx(1.0 / (8396 * math.log(8396)))
    assert default_delta(8396) < 1.0 / 8396


def _run_ledger(sigma_votes: float, sigma_counts: float, delta: float, eps: float) -> Ledger:
    ledger = Ledger(delta=delta, target_epsilon=eps, delta_rule="1/(N ln N), N = 8396")
    ledger.record(GaussianRelease("class counts", sigma_counts, kind="class_counts"))
    for t in range(T):
        ledger.record(GaussianRelease(f"votes_t{t}", sigma_votes + 0.0001 * t, iteration=t))
    return ledger


def test_ledger_round_trips_and_prices_its_events(tmp_path: Path) -> None:
    delta = default_delta(8396)
    sigma_votes, sigma_counts = split_budget(2.0, delta, T, 0.05)
    assert sigma_counts is not None
    ledger = _run_ledger(sigma_votes, sigma_counts, delta, 2.0)
    sigmas = [e.sigma for e in ledger.events]
    assert ledger.mu() == pytest.approx(math.sqrt(sum(1.0 / s**2 for s in sigmas)), rel=1e-12)
    assert ledger.epsilon() == pytest.approx(epsilon_for_sigmas(sigmas, delta), rel=1e-12)
    ledger.assert_within_target()

    path = tmp_path / "run" / "privacy.json"
    ledger.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["privacy.json"]  # no temp file left behind
    json.loads(path.read_text())  # strict JSON a reviewer can open
    loaded = Ledger.load(path)
    assert loaded == ledger
    assert loaded.mu() == ledger.mu() and loaded.epsilon() == ledger.epsilon()

    summary = loaded.summary()
    for s in sigmas:
        assert f"{s:.4f}" in summary
    assert "add/remove one record" in summary and "1/(N ln N), N = 8396" in summary
    assert f"{ledger.epsilon():.4f}" in summary


def test_ledger_refuses_to_exceed_its_target() -> None:
    delta = default_delta(1_939_290)
    ledger = Ledger(delta=delta, target_epsilon=1.0)
    planned = [GaussianRelease(f"votes_t{t}", 15.34, iteration=t) for t in range(T)]  # Yelp's
    with pytest.raises(RuntimeError, match="budget exceeded"):
        ledger.assert_within_target(planned)  # a plan is refused before anything is drawn
    assert ledger.events == []
    with pytest.raises(RuntimeError, match="budget exceeded"):
        for event in planned:  # and recording one more than the budget allows is refused too
            ledger.record(event)
    assert len(ledger.events) < T


def test_ledger_with_a_noiseless_release_costs_infinity(tmp_path: Path) -> None:
    ledger = Ledger(delta=1e-5, target_epsilon=math.inf)
    ledger.record(GaussianRelease("votes", 0.0, iteration=0))
    assert ledger.mu() == math.inf and ledger.epsilon() == math.inf
    ledger.save(tmp_path / "p.json")
    assert Ledger.load(tmp_path / "p.json").epsilon() == math.inf


def test_release_noise_multiplier_and_validation() -> None:
    assert GaussianRelease("v", 6.0, sensitivity=2.0).noise_multiplier == 3.0
    with pytest.raises(ValueError, match="kind"):
        GaussianRelease("v", 6.0, kind="clean_counts")
    with pytest.raises(ValueError, match="sigma"):
        GaussianRelease("v", -1.0)


def test_noise_is_a_seeded_float_copy_and_never_mutates_the_clean_histogram() -> None:
    clean = np.array([3, 0, 7], dtype=np.int64)
    noisy = add_gaussian_noise(clean, 2.0, np.random.default_rng(0))
    assert noisy.dtype == np.float64 and not np.array_equal(noisy, clean)
    assert np.array_equal(clean, [3, 0, 7])
    assert np.array_equal(noisy, add_gaussian_noise(clean, 2.0, np.random.default_rng(0)))
    exact = add_gaussian_noise(clean, 0.0, np.random.default_rng(0))
    assert np.array_equal(exact, clean) and exact is not clean and exact.dtype == np.float64


def test_noise_has_the_requested_standard_deviation() -> None:
    noisy = add_gaussian_noise(np.zeros(200_000), 3.0, np.random.default_rng(1))
    assert noisy.std() == pytest.approx(3.0, rel=0.01)
