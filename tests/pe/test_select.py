"""Selection reads only the noisy histogram; class sizes are split without raw private counts."""

import numpy as np
import pytest

from augpe.pe.select import allocate, select_parents


def test_rank_takes_the_highest_noisy_counts():
    noisy = np.array([0.5, 3.0, -1.0, 2.0, 2.5])
    got = select_parents(noisy, 3, "rank", 0.0, np.random.default_rng(0))
    assert got.tolist() == [1, 4, 3]


def test_rank_breaks_ties_by_index_deterministically():
    noisy = np.array([1.0, 2.0, 2.0, 2.0])
    got = select_parents(noisy, 2, "rank", 0.0, np.random.default_rng(0))
    assert got.tolist() == [1, 2]


def test_prob_never_picks_bins_below_threshold():
    noisy = np.array([5.0, 0.4, -3.0, 10.0])
    got = select_parents(noisy, 2000, "prob", 1.0, np.random.default_rng(0))
    assert set(got.tolist()) == {0, 3}
    frac0 = np.mean(got == 0)
    assert frac0 == pytest.approx(4.0 / 13.0, abs=0.03)  # (5-1) / ((5-1) + (10-1))


def test_prob_with_all_counts_clipped_is_uniform():
    noisy = np.array([-1.0, -2.0, 0.0, -0.5])
    got = select_parents(noisy, 4000, "prob", 0.0, np.random.default_rng(1))
    counts = np.bincount(got, minlength=4) / 4000
    np.testing.assert_allclose(counts, 0.25, atol=0.03)


def test_prob_is_seeded():
    noisy = np.arange(10, dtype=float)
    a = select_parents(noisy, 5, "prob", 0.0, np.random.default_rng(7))
    b = select_parents(noisy, 5, "prob", 0.0, np.random.default_rng(7))
    assert a.tolist() == b.tolist()


def test_allocate_sums_to_total_and_gives_every_class_one():
    sizes = allocate(100, np.array([900.0, 90.0, -4.0]))
    assert sizes.sum() == 100
    assert (sizes >= 1).all()
    assert sizes[0] > sizes[1] > 0


def test_allocate_all_zero_weights_is_an_equal_split():
    assert allocate(9, np.zeros(3)).tolist() == [3, 3, 3]


def test_allocate_refuses_fewer_samples_than_classes():
    with pytest.raises(ValueError, match="smaller than the number of classes"):
        allocate(2, np.ones(3))
