"""Privacy: exact Gaussian-DP accounting, the release ledger, the plan, and the one mechanism.

Privacy model. What is protected is each private record (each user, when votes are normalised per
user): the neighbouring relation is add/remove one record (user). The only things that touch
private data and leave are the per-iteration vote histograms (L2 sensitivity 1) and one size
release (the class-count histogram, when class sizes are not public or uniform), and,
when asked for, the topic keywords (`keywords`), the length distribution (`lengths`) and the
class centroids (`centroids`), each released with Gaussian noise by `GaussianMechanism`, which
records the event before it draws. Per-class histograms are built from disjoint records, so they
compose in parallel: one sigma per iteration covers all classes. T releases compose exactly as
mu-GDP, mu = sqrt(sum_t 1/sigma_t^2), converted to (eps, delta) in closed form. Delta and every
sigma are fixed from the config before any private data is read (`plan`); sigma is rounded UP
after calibration, so the published eps is never exceeded.
"""

from augpe.privacy.accounting import (
    DEFAULT_DELTA,
    calibrate_sigma,
    default_delta,
    epsilon_for_sigma,
    epsilon_for_sigmas,
    gdp_delta,
    gdp_epsilon,
    gdp_mu,
    pld_epsilon,
    schedule_sigmas,
    split_budget,
    vote_sigmas,
)
from augpe.privacy.ledger import (
    RELEASE_KINDS,
    BudgetExceeded,
    GaussianRelease,
    Ledger,
    Neighbouring,
)
from augpe.privacy.mechanism import GaussianMechanism, PrivacyStateError, RunSecret
from augpe.privacy.plan import (
    PlannedReleases,
    PrivacySettings,
    first_release,
    keyword_release,
    planned_releases,
    resolve_delta,
    vote_releases,
)

__all__ = [
    "DEFAULT_DELTA",
    "RELEASE_KINDS",
    "BudgetExceeded",
    "GaussianMechanism",
    "GaussianRelease",
    "Ledger",
    "Neighbouring",
    "PlannedReleases",
    "PrivacySettings",
    "PrivacyStateError",
    "RunSecret",
    "calibrate_sigma",
    "default_delta",
    "epsilon_for_sigma",
    "epsilon_for_sigmas",
    "first_release",
    "gdp_delta",
    "gdp_epsilon",
    "gdp_mu",
    "keyword_release",
    "planned_releases",
    "pld_epsilon",
    "resolve_delta",
    "schedule_sigmas",
    "split_budget",
    "vote_releases",
    "vote_sigmas",
]
