"""Per-iteration budget schedules: sigma_t differ, the total never exceeds the target."""

import itertools
import math

import pytest

from augpe.config import parse_config
from augpe.errors import ConfigError
from augpe.privacy import epsilon_for_sigmas, pld_epsilon, schedule_sigmas


@pytest.mark.parametrize("weights", [[1.0] * 10, list(range(1, 11)), [1, 1, 1, 5]])
def test_schedule_spends_at_most_the_target_and_nearly_all_of_it(weights):
    sigmas, counts = schedule_sigmas(1.0, 1e-5, weights, count_share=0.05)
    spent = epsilon_for_sigmas(sigmas + [counts], 1e-5)
    assert 0.99 < spent <= 1.0


def test_linear_schedule_spends_more_in_later_rounds():
    sigmas, _ = schedule_sigmas(2.0, 1e-5, list(range(1, 6)))
    assert all(a > b for a, b in itertools.pairwise(sigmas))


def test_varying_sigmas_agree_with_dp_accounting_pld_within_one_percent():
    pytest.importorskip("dp_accounting")
    sigmas, counts = schedule_sigmas(1.0, 1e-5, [1, 2, 3, 4, 5], count_share=0.1)
    ours = epsilon_for_sigmas(sigmas + [counts], 1e-5)
    theirs = pld_epsilon(sigmas + [counts], 1e-5)
    assert math.isclose(ours, theirs, rel_tol=0.01)


def test_schedule_rejects_non_positive_weights():
    with pytest.raises(ValueError, match="schedule weights must be positive"):
        schedule_sigmas(1.0, 1e-5, [1.0, 0.0])


def test_config_schedule_must_have_one_weight_per_iteration():
    with pytest.raises(ConfigError, match="privacy.schedule has 2 weights but pe.iterations is 3"):
        parse_config(
            {"data": {"path": "x.csv"}, "privacy": {"schedule": [1, 2]}, "pe": {"iterations": 3}}
        )


def test_config_linear_schedule_weights():
    cfg = parse_config(
        {"data": {"path": "x.csv"}, "privacy": {"schedule": "linear"}, "pe": {"iterations": 3}}
    )
    assert cfg.schedule_weights() == [1.0, 2.0, 3.0]


def test_inf_epsilon_means_no_noise():
    sigmas, counts = schedule_sigmas(math.inf, 1e-5, [1.0, 1.0], count_share=0.05)
    assert sigmas == [0.0, 0.0] and counts == 0.0
