"""The privacy plan of a run: which releases, in which order, with which sigma, and why delta is what it is.

Order matters because delta may come from the data. With `privacy.delta` unset, delta =
1/(M ln M) for M a DP upper estimate of N (`delta_from_size_estimate`), taken from the first
release: the class counts (`class_counts: dp`) or, otherwise, a one-bin record count. That first
release is calibrated at the public `DELTA_REFERENCE` (<= the final delta for any realistic N, so
it costs at most its share), delta follows from its noisy value, and the votes get exactly what is
left of mu^2 at that delta. N itself is never published; neither it nor anything computed from the
clean data, other than through a noisy release, reaches delta, sigma or any output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from augpe.config import Config
from augpe.privacy.accounting import (
    DELTA_REFERENCE,
    calibrate_sigma,
    delta_from_size_estimate,
    vote_sigmas,
)
from augpe.privacy.ledger import GaussianRelease, Neighbouring

__all__ = [
    "PrivacySettings",
    "centroid_release",
    "first_release",
    "keyword_release",
    "length_release",
    "resolve_delta",
    "vote_releases",
]


@dataclass(frozen=True)
class PrivacySettings:
    """Everything the privacy cost depends on. Public, stored in the ledger, checked on resume."""

    epsilon: float
    delta: float | None  # None: from a DP estimate of N
    weights: tuple[float, ...]  # one per vote (T = len)
    class_counts: Literal["dp", "uniform", "public"]
    count_share: float
    neighbouring: Neighbouring
    max_records: int | None = None
    keyword_share: float | None = None  # None: no keyword release
    centroid_share: float | None = None  # None: no class-centroid release
    length_share: float | None = None  # None: no length-distribution release

    @classmethod
    def from_config(cls, cfg: Config) -> PrivacySettings:
        """The settings of a run config: its privacy section, T and the unit of protection."""
        p = cfg.privacy
        return cls(
            epsilon=p.epsilon,
            delta=p.delta,
            weights=tuple(cfg.schedule_weights()),
            class_counts=p.class_counts,
            count_share=p.class_count_share,
            neighbouring=Neighbouring.USER if cfg.data.user_column else Neighbouring.RECORD,
            max_records=cfg.data.max_records,
            keyword_share=p.keyword_share if p.keywords else None,
            centroid_share=p.centroid_share if p.centroids else None,
            length_share=p.length_share if p.lengths else None,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["epsilon"] = self.epsilon if math.isfinite(self.epsilon) else str(self.epsilon)
        d["weights"] = list(self.weights)
        d["neighbouring"] = self.neighbouring.value
        return d

    def differences(self, stored: dict[str, Any]) -> list[str]:
        """`key: stored -> now` for every setting that differs from a stored run's (a setting a
        stored ledger predates reads as None, its value when off)."""
        now = self.to_dict()
        keys = sorted(set(now) | set(stored))
        return [
            f"{k}: {stored.get(k)!r} -> {now.get(k)!r}" for k in keys if stored.get(k) != now.get(k)
        ]


def first_release(s: PrivacySettings) -> GaussianRelease | None:
    """The release made before the votes: DP class counts, or the record count delta comes from."""
    if s.class_counts == "dp":
        name, kind = "class_counts", "class_counts"
    elif s.delta is None:
        name, kind = "record_count", "record_count"
    else:
        return None
    sigma = calibrate_sigma(
        s.epsilon, s.delta if s.delta is not None else DELTA_REFERENCE, 1, share=s.count_share
    )
    return GaussianRelease(name, sigma, kind=kind)


def _before_votes(s: PrivacySettings, name: str, share: float | None) -> GaussianRelease | None:
    """A release made before the votes, if asked for (`share` not None): its share of mu^2 at the
    same reference delta as the first release (delta may not be known yet)."""
    if share is None:
        return None
    delta = s.delta if s.delta is not None else DELTA_REFERENCE
    return GaussianRelease(name, calibrate_sigma(s.epsilon, delta, 1, share=share), kind=name)


def keyword_release(s: PrivacySettings) -> GaussianRelease | None:
    """The DP topic-keyword histogram (`augpe.privacy.keywords`), if asked for."""
    return _before_votes(s, "keywords", s.keyword_share)


def length_release(s: PrivacySettings) -> GaussianRelease | None:
    """The DP length distribution (`augpe.privacy.lengths`), if asked for."""
    return _before_votes(s, "lengths", s.length_share)


def centroid_release(s: PrivacySettings, delta: float) -> GaussianRelease | None:
    """The DP class centroids (`augpe.privacy.centroids`), if asked for: its share of mu^2 at the
    run's delta (known by then: it is planned with the votes), drawn after the last vote."""
    if s.centroid_share is None:
        return None
    sigma = calibrate_sigma(s.epsilon, delta, 1, share=s.centroid_share)
    return GaussianRelease("centroids", sigma, kind="centroids")


def resolve_delta(
    s: PrivacySettings, first: GaussianRelease | None, noisy: np.ndarray | None
) -> tuple[float, str]:
    """(delta, how it was chosen): the user's, or 1/(M ln M) from the first release's noisy value."""
    if s.delta is not None:
        return s.delta, "set by the user (privacy.delta)"
    assert first is not None and noisy is not None
    delta, m = delta_from_size_estimate(noisy.tolist(), first.sigma)
    unit = "users" if s.neighbouring is Neighbouring.USER else "records"
    return delta, (
        f"1/(M ln M), M = {m}: DP upper estimate of the number of {unit} (noisy {first.name} sum "
        f"+ 3 sigma); the exact number is never published"
    )


def vote_releases(
    s: PrivacySettings, delta: float, before: Sequence[GaussianRelease]
) -> list[GaussianRelease]:
    """One sensitivity-1 Gaussian release per vote, spending what the releases `before` left."""
    sigmas = vote_sigmas(s.epsilon, delta, s.weights, [e.noise_multiplier for e in before])
    return [GaussianRelease(f"votes_t{t}", sigma, iteration=t) for t, sigma in enumerate(sigmas, 1)]
