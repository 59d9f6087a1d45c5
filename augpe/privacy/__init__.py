"""Privacy: exact Gaussian-DP accounting, the release ledger, and the one noise function.

Privacy model. What is protected is each private record (each user, when votes are normalised per
user): the neighbouring relation is add/remove one record. The only things that touch private data
and leave are the per-iteration vote histograms (L2 sensitivity 1) and, optionally, one class-count
histogram, each released with Gaussian noise. Per-class histograms are built from disjoint records,
so they compose in parallel: one sigma per iteration covers all classes. T releases compose exactly
as mu-GDP, mu = sqrt(sum_t 1/sigma_t^2), converted to (eps, delta) in closed form. Sigma is rounded
UP after calibration, so the published eps is never exceeded.
"""

from augpe.privacy.accounting import (
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
)
from augpe.privacy.ledger import RELEASE_KINDS, GaussianRelease, Ledger
from augpe.privacy.noise import add_gaussian_noise

__all__ = [
    "RELEASE_KINDS",
    "GaussianRelease",
    "Ledger",
    "add_gaussian_noise",
    "calibrate_sigma",
    "default_delta",
    "epsilon_for_sigma",
    "epsilon_for_sigmas",
    "gdp_delta",
    "gdp_epsilon",
    "gdp_mu",
    "pld_epsilon",
    "schedule_sigmas",
    "split_budget",
]
