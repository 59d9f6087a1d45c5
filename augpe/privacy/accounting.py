"""Exact Gaussian-DP accounting (Dong, Roth & Su, 2019) for the PE loop.

Every release in Aug-PE is a sensitivity-1 histogram plus N(0, sigma^2), i.e. (1/sigma)-GDP, and
mu-GDP composes exactly: mu = sqrt(sum_t 1/sigma_t^2). The (eps, delta) curve of mu-GDP is known in
closed form, so there is no slack to give away: RDP would overstate eps by about 8-10% at our
settings (sigma = 10, T = 10, delta = 1e-5: RDP 1.308, exact 1.199).

Pure maths: errors are ValueError naming the quantity, never a config key (`augpe.privacy.plan`
translates them for a config). Convention: every answer errs on the private side. Root finders return the bound that is safe
(eps never below the true eps, mu never above the true mu) and sigma is rounded *up*, so a
published (eps, delta) is always met, never approached from the wrong side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import brentq
from scipy.special import log_ndtr

__all__ = [
    "ACCOUNTANTS",
    "DEFAULT_DELTA",
    "Accountant",
    "accountant",
    "calibrate_sigma",
    "default_delta",
    "epsilon_for_sigma",
    "epsilon_for_sigmas",
    "gdp_delta",
    "gdp_epsilon",
    "gdp_mu",
    "pld_epsilon",
    "split_budget",
    "vote_sigmas",
]

DEFAULT_DELTA = 1e-6
"""The delta of a run that sets neither `privacy.delta` nor a public bound on the number of protected
units: a constant, fixed before any data is read. It is below 1/(N ln N) for N up to about 87,000
records (users); for larger data set `privacy.delta` or `privacy.population_bound`."""

_XTOL = 1e-12
_RTOL = 4 * float(np.finfo(float).eps)  # as tight as brentq allows


def _check_delta(delta: float) -> None:
    if not (0.0 < delta < 1.0):  # also rejects NaN
        raise ValueError(f"delta must be strictly between 0 and 1, got {delta}")


def _check_epsilon(epsilon: float) -> None:
    if not epsilon > 0.0:  # also rejects NaN
        raise ValueError(f"epsilon must be > 0, got {epsilon}")


def gdp_delta(epsilon: float, mu: float) -> float:
    """delta(eps) of mu-GDP: Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2).

    Evaluated in log space, because at large eps the second term is e^eps (overflow) times a
    vanishing tail (underflow), and their difference is what matters.
    """
    if math.isnan(epsilon) or math.isnan(mu) or mu < 0.0:
        raise ValueError(f"GDP needs mu >= 0 and a numeric epsilon, got mu={mu}, epsilon={epsilon}")
    if epsilon == math.inf:
        return 0.0
    if mu == math.inf:
        return 1.0
    if mu == 0.0:
        return 0.0 if epsilon >= 0.0 else 1.0 - math.exp(epsilon)
    log_a = float(log_ndtr(-epsilon / mu + mu / 2.0))
    log_b = epsilon + float(log_ndtr(-epsilon / mu - mu / 2.0))
    if log_a == -math.inf:
        return 0.0
    # exp(log_a) * (1 - exp(log_b - log_a)); log_b <= log_a mathematically, clamp rounding noise.
    return max(0.0, math.exp(log_a) * -math.expm1(min(0.0, log_b - log_a)))


def gdp_epsilon(mu: float, delta: float) -> float:
    """The smallest eps with gdp_delta(eps, mu) <= delta (rounded towards the safe, larger side)."""
    _check_delta(delta)
    if math.isnan(mu) or mu < 0.0:
        raise ValueError(f"mu must be >= 0, got {mu}")
    if mu == math.inf:
        return math.inf
    if gdp_delta(0.0, mu) <= delta:
        return 0.0
    hi = 1.0
    while gdp_delta(hi, mu) > delta:
        hi *= 2.0
    eps = float(brentq(lambda e: gdp_delta(e, mu) - delta, 0.0, hi, xtol=_XTOL, rtol=_RTOL))
    while gdp_delta(eps, mu) > delta:  # brentq may stop just left of the root
        eps += max(_XTOL, abs(eps) * 1e-14)
    return eps


def gdp_mu(epsilon: float, delta: float) -> float:
    """The largest mu with gdp_delta(epsilon, mu) <= delta (rounded towards the safe, smaller side)."""
    _check_epsilon(epsilon)
    _check_delta(delta)
    if epsilon == math.inf:
        return math.inf
    hi = 1.0
    while gdp_delta(epsilon, hi) <= delta:
        hi *= 2.0
    mu = float(brentq(lambda m: gdp_delta(epsilon, m) - delta, 0.0, hi, xtol=_XTOL, rtol=_RTOL))
    while mu > 0.0 and gdp_delta(epsilon, mu) > delta:  # brentq may stop just right of the root
        mu -= max(_XTOL, mu * 1e-14)
    return max(mu, 0.0)


def _round_up(x: float, decimals: int) -> float:
    scale = 10.0**decimals
    return math.ceil(x * scale) / scale


def calibrate_sigma(
    epsilon: float, delta: float, iterations: int, *, share: float = 1.0, decimals: int = 4
) -> float:
    """Noise multiplier for `iterations` sensitivity-1 Gaussian releases spending `share` of mu^2.

    The budget is split in mu^2 because that is what composes additively: T / sigma^2 =
    share * mu_total^2. The result is rounded *up* to `decimals` (sigma is written into configs and
    papers as a short decimal; rounding down would silently overspend), then checked.
    epsilon = inf means a non-private run and returns 0.0 (no noise).
    """
    _check_epsilon(epsilon)
    _check_delta(delta)
    if (
        not isinstance(iterations, (int, np.integer))
        or isinstance(iterations, bool)
        or iterations < 1
    ):
        raise ValueError(f"iterations (T) must be an integer >= 1, got {iterations!r}")
    if not (0.0 < share <= 1.0):
        raise ValueError(f"a budget share must be in (0, 1], got {share}")
    if decimals < 0:
        raise ValueError(f"decimals must be >= 0, got {decimals}")
    if epsilon == math.inf:
        return 0.0
    mu_total = gdp_mu(epsilon, delta)
    sigma = _round_up(math.sqrt(iterations / share) / mu_total, decimals)
    # Verify the rounded sigma: equivalent full-budget mu must still meet epsilon. If float
    # rounding landed exactly on the boundary, step up one unit of the last decimal.
    for _ in range(3):
        if gdp_epsilon(math.sqrt(iterations / share) / sigma, delta) <= epsilon:
            return sigma
        sigma = (round(sigma * 10.0**decimals) + 1) / 10.0**decimals
    raise RuntimeError(f"calibrated sigma {sigma} does not meet epsilon={epsilon}, delta={delta}")


def epsilon_for_sigmas(sigmas: Sequence[float], delta: float) -> float:
    """eps at `delta` of sensitivity-1 Gaussian releases with these noise multipliers, composed."""
    _check_delta(delta)
    total = 0.0
    for s in sigmas:
        if math.isnan(s) or s < 0.0:
            raise ValueError(f"sigma must be >= 0, got {s}")
        if s == 0.0:
            return math.inf
        total += 1.0 / (s * s)
    return gdp_epsilon(math.sqrt(total), delta)


def epsilon_for_sigma(sigma: float, delta: float, iterations: int) -> float:
    """eps at `delta` of `iterations` releases with the same noise multiplier `sigma`."""
    return epsilon_for_sigmas([sigma] * iterations, delta)


def default_delta(n: int) -> float:
    """1/(n ln n), the papers' default: below 1/n (so no record can be published outright).

    `n` must be public: a stated upper bound on the number of protected units, never a count of
    the private data (a delta that depends on the data makes the budget itself data-dependent).
    """
    if n < 2:
        raise ValueError(f"delta = 1/(N ln N) needs a public bound N >= 2, got N={n}")
    return 1.0 / (n * math.log(n))


def vote_sigmas(
    epsilon: float, delta: float, weights: Sequence[float], spent: Sequence[float] = ()
) -> list[float]:
    """Per-vote sigmas that spend what is left of mu^2 after the `spent` releases' sigmas.

    Vote t gets weights[t]/sum(weights) of the remaining mu^2; each sigma is rounded up on its own,
    so the composed eps at `delta` never exceeds `epsilon` (checked before returning).
    """
    if len(weights) == 0 or any(not (w > 0 and math.isfinite(w)) for w in weights):
        raise ValueError("schedule weights must be positive finite numbers, one per vote")
    _check_epsilon(epsilon)
    _check_delta(delta)
    if epsilon == math.inf:
        return [0.0] * len(weights)
    mu = gdp_mu(epsilon, delta)
    rest = mu * mu - sum(1.0 / (s * s) for s in spent if s > 0)
    if any(s == 0 for s in spent) or rest <= 0.0:
        raise ValueError(
            f"nothing of eps={epsilon} is left for the votes after the other releases; "
            "lower their shares"
        )
    total = float(sum(weights))
    sigmas = [_round_up(1.0 / math.sqrt(rest * w / total), 4) for w in weights]
    for _ in range(3):
        if epsilon_for_sigmas([*spent, *sigmas], delta) <= epsilon:
            return sigmas
        sigmas = [s + 1e-4 for s in sigmas]
    raise RuntimeError(f"vote sigmas {sigmas} do not meet epsilon={epsilon}, delta={delta}")


def split_budget(
    epsilon: float, delta: float, iterations: int, count_share: float | None
) -> tuple[float, float | None]:
    """(sigma_votes, sigma_counts): the T vote histograms and an optional DP class-count release.

    Class sizes taken from the private data without noise leak, so when `count_share` is given a
    single sensitivity-1 class-count histogram gets that share of mu^2 and the votes get the rest.
    With count_share=None all budget goes to the votes and sigma_counts is None.
    """
    if count_share is None:
        return calibrate_sigma(epsilon, delta, iterations), None
    if not (0.0 < count_share < 1.0):
        raise ValueError(
            f"the class-count share must be strictly between 0 and 1, got {count_share}"
        )
    sigma_votes = calibrate_sigma(epsilon, delta, iterations, share=1.0 - count_share)
    sigma_counts = calibrate_sigma(epsilon, delta, 1, share=count_share)
    if epsilon != math.inf:
        spent = epsilon_for_sigmas([sigma_votes] * iterations + [sigma_counts], delta)
        if spent > epsilon:
            raise RuntimeError(f"split budget spends eps={spent} > target {epsilon}")
    return sigma_votes, sigma_counts


def pld_epsilon(sigmas: Sequence[float], delta: float) -> float:
    """Independent cross-check of the GDP numbers with Google's dp-accounting PLD accountant.

    Imported lazily: dp-accounting is an optional extra, only tests and `augpe budget` need it.
    """
    try:
        import dp_accounting
        from dp_accounting.pld import pld_privacy_accountant
    except ImportError as exc:  # pragma: no cover - depends on the environment
        from augpe.errors import missing_dependency

        raise missing_dependency("dp_accounting", extra="accounting") from exc
    _check_delta(delta)
    if any(s == 0.0 for s in sigmas):
        return math.inf
    counts: dict[float, int] = {}
    for s in sigmas:
        counts[float(s)] = counts.get(float(s), 0) + 1
    events: list[dp_accounting.DpEvent] = [
        dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(s), n)
        for s, n in counts.items()
    ]
    accountant = pld_privacy_accountant.PLDAccountant(
        neighboring_relation=dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE,
        value_discretization_interval=1e-4,
    )
    accountant.compose(dp_accounting.ComposedDpEvent(events))
    return float(accountant.get_epsilon(delta))


def schedule_sigmas(
    epsilon: float,
    delta: float,
    weights: Sequence[float],
    count_share: float | None = None,
) -> tuple[list[float], float | None]:
    """Per-iteration sigmas for a budget schedule: vote t gets weights[t]/sum(weights) of mu^2.

    With weights all equal this is `split_budget`. Spending more in later rounds (growing weights)
    means less noise when the population is already close to the private data. Each sigma_t is
    rounded up on its own, so mu = sqrt(sum 1/sigma_t^2 [+ 1/sigma_counts^2]) never exceeds the
    target and the composed eps is checked before returning.
    """
    if len(weights) == 0 or any(not (w > 0 and math.isfinite(w)) for w in weights):
        raise ValueError("schedule weights must be positive finite numbers, one per vote")
    if count_share is not None and not (0.0 < count_share < 1.0):
        raise ValueError(
            f"the class-count share must be strictly between 0 and 1, got {count_share}"
        )
    vote_share = 1.0 - (count_share or 0.0)
    total = float(sum(weights))
    sigmas = [calibrate_sigma(epsilon, delta, 1, share=vote_share * w / total) for w in weights]
    sigma_counts = calibrate_sigma(epsilon, delta, 1, share=count_share) if count_share else None
    if epsilon != math.inf:
        spent = epsilon_for_sigmas(sigmas + ([sigma_counts] if sigma_counts else []), delta)
        if spent > epsilon:
            raise RuntimeError(f"schedule spends eps={spent} > target {epsilon}")
    return sigmas, sigma_counts


Accountant = Callable[[Sequence[float], float], float]
"""(noise multipliers sigma / sensitivity of the composed Gaussian releases, delta) -> epsilon."""

ACCOUNTANTS: dict[str, Accountant] = {
    "gdp": epsilon_for_sigmas,  # exact mu-GDP, closed form: the run's own accountant
    "pld": pld_epsilon,  # Google's dp-accounting PLD accountant: an independent cross-check
}
"""Accountants by name (`augpe budget --accountant NAME`)."""


def accountant(name: str) -> Accountant:
    if name not in ACCOUNTANTS:
        raise ValueError(f"unknown accountant {name!r}; one of {sorted(ACCOUNTANTS)}")
    return ACCOUNTANTS[name]
