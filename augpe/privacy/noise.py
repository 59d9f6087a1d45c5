"""The one place noise is drawn: N(0, sigma^2) added to a released histogram.

The generator is passed in (never created here) so a run is reproducible from its seed and a
resumed run can restore the generator state instead of redrawing noise already released.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["add_gaussian_noise"]


def add_gaussian_noise(hist: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """A float64 copy of `hist` plus i.i.d. N(0, sigma^2); sigma = 0 (epsilon = inf) adds nothing.

    Always a copy: the clean histogram must never be mutated into, or confused with, the release.
    """
    if math.isnan(sigma) or sigma < 0.0 or sigma == math.inf:
        raise ValueError(f"sigma must be finite and >= 0, got {sigma}")
    noisy = np.array(hist, dtype=np.float64, copy=True)
    if sigma > 0.0:
        noisy += rng.normal(0.0, sigma, size=noisy.shape)
    return noisy
