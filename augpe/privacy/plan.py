"""The privacy plan of a run: which releases, in which order, with which sigma, and why delta is what it is.

The whole plan is a function of the config alone, priced before any private data is read: delta is
`privacy.delta`, or 1/(M ln M) for M a PUBLIC upper bound on the number of protected units
(`privacy.population_bound`, else `data.max_records`), or the constant `DEFAULT_DELTA`. Nothing
computed from the data, not even a noisy release, reaches delta or any sigma: the composition of a
budget fixed in advance is a theorem, one chosen after seeing an output is not. N is never published.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from augpe.config import Config
from augpe.errors import ConfigError
from augpe.privacy.accounting import DEFAULT_DELTA, calibrate_sigma, default_delta, vote_sigmas
from augpe.privacy.ledger import GaussianRelease, Neighbouring, ReleaseKind

__all__ = [
    "PrivacySettings",
    "centroid_release",
    "first_release",
    "keyword_release",
    "length_release",
    "planned_releases",
    "resolve_delta",
    "vote_releases",
]


@dataclass(frozen=True)
class PrivacySettings:
    """Everything the privacy cost depends on. Public, stored in the ledger, checked on resume."""

    epsilon: float
    delta: float | None  # None: from population_bound, else DEFAULT_DELTA
    weights: tuple[float, ...]  # one per vote (T = len)
    class_counts: Literal["dp", "uniform", "public"]
    count_share: float
    neighbouring: Neighbouring
    max_records: int | None = None
    keyword_share: float | None = None  # None: no keyword release
    centroid_share: float | None = None  # None: no class-centroid release
    length_share: float | None = None  # None: no length-distribution release
    population_bound: int | None = None  # a PUBLIC upper bound on the protected units
    public_labels: bool = False  # the class list is data.labels (public), not read from the data

    @classmethod
    def from_config(cls, cfg: Config) -> PrivacySettings:
        """The settings of a run config: its privacy section, T and the unit of protection.
        `auto` settings must be decided first (`augpe.runner.resolved_config`)."""
        p = cfg.privacy
        for key in ("keywords", "centroids"):
            if getattr(p, key) == "auto":
                raise ConfigError(
                    f"privacy.{key}: 'auto' is decided from the config before planning "
                    "(augpe.runner.resolved_config)"
                )
        return cls(
            epsilon=p.epsilon,
            delta=p.delta,
            weights=tuple(cfg.schedule_weights()),
            class_counts=p.class_counts,
            count_share=p.class_count_share,
            neighbouring=Neighbouring.USER if cfg.data.user_column else Neighbouring.RECORD,
            max_records=cfg.data.max_records,
            keyword_share=p.keyword_share if p.keywords is True else None,
            centroid_share=p.centroid_share if p.centroids is True else None,
            length_share=p.length_share if p.lengths else None,
            population_bound=p.population_bound or cfg.data.max_records,
            public_labels=cfg.data.labels is not None,
        )

    @property
    def label_set(self) -> str:
        """What the guarantee says of the class list: part of the relation, or not protected."""
        if self.public_labels:
            return "public (data.labels): neighbouring datasets share it"
        return (
            "read from the private data (data.labels unset): the class names are published "
            "as they are and are NOT protected"
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


def resolve_delta(s: PrivacySettings) -> tuple[float, str]:
    """(delta, how it was chosen), from the settings alone: fixed before any data is read."""
    if s.delta is not None:
        return s.delta, "set by the user (privacy.delta), before any data was read"
    unit = "users" if s.neighbouring is Neighbouring.USER else "records"
    if s.population_bound is not None:
        m = max(3, s.population_bound)
        return default_delta(m), (
            f"1/(M ln M), M = {m}: a public upper bound on the number of {unit} "
            "(privacy.population_bound or data.max_records), fixed before any data was read"
        )
    return DEFAULT_DELTA, (
        f"the fixed default {DEFAULT_DELTA:g} (below 1/(N ln N) for up to ~87,000 {unit}), "
        "fixed before any data was read"
    )


def first_release(s: PrivacySettings, delta: float) -> GaussianRelease | None:
    """The DP class counts (`class_counts: dp`), released before the votes to size the classes."""
    if s.class_counts != "dp":
        return None
    sigma = calibrate_sigma(s.epsilon, delta, 1, share=s.count_share)
    return GaussianRelease("class_counts", sigma, kind=ReleaseKind.CLASS_COUNTS)


def _share(
    s: PrivacySettings, delta: float, kind: ReleaseKind, share: float | None
) -> GaussianRelease | None:
    """A one-off release with its own share of mu^2, if asked for (`share` not None)."""
    if share is None:
        return None
    sigma = calibrate_sigma(s.epsilon, delta, 1, share=share)
    return GaussianRelease(kind.value, sigma, kind=kind)


def keyword_release(s: PrivacySettings, delta: float) -> GaussianRelease | None:
    """The DP topic-keyword histogram (`augpe.privacy.keywords`), if asked for."""
    return _share(s, delta, ReleaseKind.KEYWORDS, s.keyword_share)


def length_release(s: PrivacySettings, delta: float) -> GaussianRelease | None:
    """The DP length distribution (`augpe.privacy.lengths`), if asked for."""
    return _share(s, delta, ReleaseKind.LENGTHS, s.length_share)


def centroid_release(s: PrivacySettings, delta: float) -> GaussianRelease | None:
    """The DP class centroids (`augpe.privacy.centroids`), if asked for, drawn after the last vote."""
    return _share(s, delta, ReleaseKind.CENTROIDS, s.centroid_share)


@dataclass(frozen=True)
class PlannedReleases:
    """Every release of a run with its sigma, priced from the settings before any data is read."""

    delta: float
    delta_rule: str
    counts: GaussianRelease | None
    keywords: GaussianRelease | None
    lengths: GaussianRelease | None
    centroids: GaussianRelease | None
    votes: list[GaussianRelease]

    def all(self) -> list[GaussianRelease]:
        one_off = (self.counts, self.keywords, self.lengths, self.centroids)
        return [*(e for e in one_off if e is not None), *self.votes]


def planned_releases(s: PrivacySettings) -> PlannedReleases:
    """The run's releases: the one-offs at their shares of mu^2, the votes spending the rest.

    The maths raises ValueError; here it becomes a ConfigError that names the settings."""
    try:
        return _planned(s)
    except ValueError as err:
        raise ConfigError(
            f"privacy (epsilon, delta, population_bound, the shares, schedule): {err}"
        ) from None


def _planned(s: PrivacySettings) -> PlannedReleases:
    delta, rule = resolve_delta(s)
    one_off = (
        first_release(s, delta),
        keyword_release(s, delta),
        length_release(s, delta),
        centroid_release(s, delta),
    )
    votes = vote_releases(s, delta, [e for e in one_off if e is not None])
    return PlannedReleases(delta, rule, *one_off, votes)


def vote_releases(
    s: PrivacySettings, delta: float, before: Sequence[GaussianRelease]
) -> list[GaussianRelease]:
    """One sensitivity-1 Gaussian release per vote, spending what the releases `before` left."""
    sigmas = vote_sigmas(s.epsilon, delta, s.weights, [e.noise_multiplier for e in before])
    return [GaussianRelease(f"votes_t{t}", sigma, iteration=t) for t, sigma in enumerate(sigmas, 1)]
