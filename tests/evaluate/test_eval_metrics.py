"""Fidelity metrics on constructed data whose answer is known."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from augpe.evaluate.fidelity import (
    fid,
    fidelity_metrics,
    knn_precision_recall,
    length_comparison,
    mauve,
    mauve_from_histograms,
)


def gauss(
    n: int, dim: int = 8, shift: float = 0.0, seed: int = 0, scale: float = 1.0
) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, scale, size=(n, dim))


def test_fid_is_zero_for_identical_sets() -> None:
    x = gauss(200)
    assert fid(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fid_grows_with_the_distance_between_the_sets() -> None:
    real = gauss(400, seed=1)
    same = fid(real, gauss(400, seed=2))
    near = fid(real, gauss(400, shift=0.5, seed=3))
    far = fid(real, gauss(400, shift=5.0, seed=4))
    assert same < 0.5
    assert same < near < far
    assert far == pytest.approx(8 * 25.0, rel=0.1)  # |mu1 - mu2|^2 = dim * shift^2


def test_fid_needs_two_samples_per_side() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        fid(gauss(1), gauss(10))


def test_mauve_is_one_for_identical_sets_and_low_for_disjoint_ones() -> None:
    x = gauss(200, seed=5)
    assert mauve(x, x) > 0.99
    assert mauve(gauss(200, seed=6), gauss(200, shift=4.0, seed=7)) < 0.05


def test_mauve_orders_closer_distributions_higher() -> None:
    real = gauss(400, seed=8)
    close = mauve(gauss(400, shift=0.2, seed=9), real)
    far = mauve(gauss(400, shift=1.0, seed=10), real)
    assert close > far


def test_mauve_divergence_curve_extremes() -> None:
    p = np.array([0.5, 0.5, 0.0, 0.0])
    assert mauve_from_histograms(p, p) == pytest.approx(1.0, abs=1e-6)
    assert mauve_from_histograms(p, p[::-1].copy()) < 0.01  # disjoint supports


@pytest.mark.skipif(importlib.util.find_spec("mauve") is None, reason="mauve-text not installed")
def test_mauve_agrees_with_the_mauve_text_package() -> None:
    import mauve as mauve_text

    p, q = gauss(200, dim=16, shift=0.3, seed=11), gauss(200, dim=16, seed=12)
    theirs = mauve_text.compute_mauve(p_features=p, q_features=q, verbose=False).mauve
    ours = mauve(p, q)
    assert ours == pytest.approx(theirs, abs=0.08)


def test_knn_precision_recall_identical_sets_are_fully_covered() -> None:
    x = gauss(100, seed=13)
    assert knn_precision_recall(x, x, k=3) == (1.0, 1.0)


def test_knn_precision_recall_disjoint_sets_cover_nothing() -> None:
    assert knn_precision_recall(gauss(100, seed=14), gauss(100, shift=20.0, seed=15), k=3) == (
        0.0,
        0.0,
    )


def test_mode_collapse_gives_high_precision_low_recall() -> None:
    real = gauss(300, seed=16)
    collapsed = gauss(
        300, seed=17, scale=0.05
    )  # all synthetic samples at the centre of the real data
    precision, recall = knn_precision_recall(real, collapsed, k=3)
    assert precision > 0.9
    assert recall < 0.2


def test_knn_needs_more_than_k_samples() -> None:
    with pytest.raises(ValueError, match="k=3"):
        knn_precision_recall(gauss(3), gauss(10), k=3)


def test_length_comparison_reports_words_and_distances() -> None:
    out = length_comparison(["one two three", "one two"], ["a b c d e f", "a b c d e f g h"])
    assert out["synthetic"]["mean"] == 2.5
    assert out["real"]["mean"] == 7.0
    assert out["wasserstein_words"] == pytest.approx(4.5)
    assert out["ks_statistic"] == 1.0


def test_fidelity_metrics_marks_what_it_cannot_compute() -> None:
    real = gauss(20, seed=18)
    out = fidelity_metrics(real, gauss(1, seed=19), ["x y"] * 20, ["x"])
    assert out["fid"] is None and out["precision"] is None
    assert any("fid" in n for n in out["notes"])
    assert out["length"]["synthetic"]["mean"] == 1.0
