"""What was released, kept apart from what it costs (the dp-accounting split).

The mechanism (`augpe.privacy.mechanism`) records a `GaussianRelease` describing *what* it
released, before the noisy value exists; the `Ledger` prices the list with exact GDP. The ledger is
saved beside the outputs so the claimed (eps, delta) can be recomputed by anyone from the sigmas
alone. It also names the run (`run_nonce`, random, public) and the privacy settings it was planned
with, so that a resume can prove it continues *this* run with *these* settings.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from augpe.atomic import write_json
from augpe.privacy.accounting import accountant, gdp_epsilon

__all__ = [
    "RELEASE_KINDS",
    "BudgetExceeded",
    "GaussianRelease",
    "Ledger",
    "Neighbouring",
    "ReleaseKind",
]


class _Named(str, Enum):
    """A string enum that prints (and formats, and serialises) as its value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class ReleaseKind(_Named):
    """What a release is a histogram of."""

    VOTES = "vote_histogram"
    CLASS_COUNTS = "class_counts"
    KEYWORDS = "keywords"
    LENGTHS = "lengths"
    CENTROIDS = "centroids"


RELEASE_KINDS = tuple(k.value for k in ReleaseKind)


SIGNED_KINDS = (ReleaseKind.CENTROIDS,)
"""Releases whose per-record contribution has signed entries (sums of embeddings)."""
SIGNED_FACTOR = 2.0


class Neighbouring(_Named):
    """The neighbouring relation the guarantee is stated under (and the sensitivities assume)."""

    RECORD = "add/remove one record"
    USER = "add/remove one user"  # with all of their records


class BudgetExceeded(RuntimeError):
    """A release (planned or recorded) would take the run past its target epsilon."""


def _json_float(x: float) -> float | str:
    """Non-finite floats as strings: strict JSON readers reject Infinity."""
    return x if math.isfinite(x) else str(x)


@dataclass(frozen=True)
class GaussianRelease:
    """One histogram released with N(0, sigma^2) noise; L2 sensitivity `sensitivity`.

    One event per iteration covers all classes: per-class histograms are built from disjoint
    private records, so they compose in parallel and cost the same as a single histogram.
    """

    name: str
    sigma: float
    sensitivity: float = 1.0
    iteration: int | None = None
    kind: ReleaseKind = ReleaseKind.VOTES
    replace_one_sensitivity: float | None = None
    """L2 sensitivity when one record (user) is *replaced* rather than added or removed. A
    contribution is a vector of L2 norm <= `sensitivity`; replacing it moves the histogram by
    ||u - v|| <= sqrt(2) * sensitivity when both are non-negative (votes, counts, keyword and
    length histograms), and by up to 2 * sensitivity when entries are signed (the class
    centroids add unit embeddings). None: from `kind`."""
    input_digest: str | None = None
    """SHA-256 of the public description of what was released on (the bins' ids and, for a vote,
    the candidate texts), set by the mechanism when it books the event: the same noise is never
    drawn again on a different histogram."""

    def __post_init__(self) -> None:
        if math.isnan(self.sigma) or self.sigma < 0.0:
            raise ValueError(f"release {self.name!r}: sigma must be >= 0, got {self.sigma}")
        if not self.sensitivity > 0.0:
            raise ValueError(
                f"release {self.name!r}: sensitivity must be > 0, got {self.sensitivity}"
            )
        if self.kind not in RELEASE_KINDS:
            raise ValueError(
                f"release {self.name!r}: kind must be one of {RELEASE_KINDS}, got {self.kind!r}"
            )
        object.__setattr__(self, "kind", ReleaseKind(self.kind))
        if self.replace_one_sensitivity is None:
            factor = SIGNED_FACTOR if self.kind in SIGNED_KINDS else math.sqrt(2.0)
            object.__setattr__(self, "replace_one_sensitivity", factor * self.sensitivity)

    @property
    def noise_multiplier(self) -> float:
        """sigma / sensitivity: the only number the privacy cost depends on."""
        return self.sigma / self.sensitivity

    @property
    def replace_one_noise_multiplier(self) -> float:
        """sigma / its replace-one sensitivity: what it costs under replace-one neighbours."""
        assert self.replace_one_sensitivity is not None  # set in __post_init__
        return self.sigma / self.replace_one_sensitivity


@dataclass
class Ledger:
    """Every Gaussian release of a run, priced exactly at `delta` by mu-GDP composition."""

    delta: float
    """Fixed when the run is planned, before any private data is read (`augpe.privacy.plan`)."""
    target_epsilon: float
    neighbouring: Neighbouring = Neighbouring.RECORD
    delta_rule: str = "set by the user"
    events: list[GaussianRelease] = field(default_factory=list)
    run_nonce: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    noise_seed_rule: str = "fresh OS entropy per run, kept in the PRIVATE folder"
    label_set: str = "not stated: treat the class names as NOT protected"

    def record(self, event: GaussianRelease) -> None:
        """Append a release. Only the mechanism calls this, before it draws the noise."""
        if self.get(event.name) is not None:
            raise ValueError(f"release {event.name!r} is already in the ledger")
        self.assert_within_target([event])
        self.events.append(event)

    def get(self, name: str) -> GaussianRelease | None:
        return next((e for e in self.events if e.name == name), None)

    def mu(self, extra: Iterable[GaussianRelease] = ()) -> float:
        """mu of the composed releases (+ `extra`, planned ones): sqrt(sum (sensitivity/sigma)^2)."""
        total = 0.0
        for e in [*self.events, *extra]:
            if e.sigma == 0.0:
                return math.inf
            total += (1.0 / e.noise_multiplier) ** 2
        return math.sqrt(total)

    def epsilon_by(self, name: str = "gdp", *, replace_one: bool = False) -> float:
        """eps at `delta` of the recorded releases by the accountant `name` (`ACCOUNTANTS`: exact
        GDP, or dp-accounting's PLD); `replace_one`: under replace-one neighbours, from each
        release's own replace-one sensitivity (a second reading, never the run's budget)."""
        mults = [
            e.replace_one_noise_multiplier if replace_one else e.noise_multiplier
            for e in self.events
        ]
        return accountant(name)(mults, self.delta)

    def replace_one_epsilon(self) -> float:
        """eps at `delta` under replace-one neighbours, exact GDP."""
        return self.epsilon_by("gdp", replace_one=True)

    def epsilon(self, extra: Iterable[GaussianRelease] = ()) -> float:
        """eps spent so far (+ `extra`) at `delta` (exact GDP conversion, rounded to the safe side)."""
        return gdp_epsilon(self.mu(extra), self.delta)

    def assert_within_target(self, planned: Iterable[GaussianRelease] = ()) -> None:
        """Fail loudly rather than publish (or draw) more than the promise. `planned` releases are
        priced with the recorded ones, so a plan is checked before any of its noise is drawn."""
        spent = self.epsilon(planned)
        if spent > self.target_epsilon * (1.0 + 1e-9):
            raise BudgetExceeded(
                f"privacy budget exceeded: eps={spent:.6g} > target eps={self.target_epsilon:.6g} "
                f"at delta={self.delta:.3g}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; `mu` and `epsilon` are derived, written for readers, ignored on load."""
        return {
            "run_nonce": self.run_nonce,
            "delta": self.delta,
            "target_epsilon": _json_float(self.target_epsilon),
            "neighbouring": self.neighbouring.value,
            "delta_rule": self.delta_rule,
            "noise_seed_rule": self.noise_seed_rule,
            "label_set": self.label_set,
            "settings": self.settings,
            "events": [{**asdict(e), "kind": e.kind.value} for e in self.events],
            "mu": _json_float(self.mu()),
            "epsilon": _json_float(self.epsilon()),
            "epsilon_replace_one": _json_float(self.replace_one_epsilon()),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ledger:
        return cls(
            delta=float(data["delta"]),
            target_epsilon=float(data["target_epsilon"]),
            neighbouring=Neighbouring(data.get("neighbouring", Neighbouring.RECORD.value)),
            delta_rule=str(data.get("delta_rule", "set by the user")),
            events=[GaussianRelease(**e) for e in data.get("events", [])],
            run_nonce=str(data.get("run_nonce", "")),
            settings=dict(data.get("settings") or {}),
            noise_seed_rule=str(data.get("noise_seed_rule", cls.noise_seed_rule)),
            label_set=str(data.get("label_set", cls.label_set)),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Atomic (write-then-rename): a crash mid-write must never leave a truncated ledger that
        under-reports what was released."""
        write_json(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Ledger:
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def summary(self) -> str:
        """Human-readable account: what a reader needs to check the privacy claim."""
        iterations = sum(1 for e in self.events if e.kind == "vote_histogram")
        spent = f"eps = {self.epsilon():.4f} at delta = {self.delta:.4g}"
        lines = [
            f"privacy spent: {spent} (target eps = {self.target_epsilon:g})",
            f"mu-GDP: mu = {self.mu():.6g}, {len(self.events)} releases, T = {iterations} votes",
        ]
        mu2 = self.mu() ** 2
        for e in self.events:
            it = "" if e.iteration is None else f" t={e.iteration}"
            share = (
                f", {100 / e.noise_multiplier**2 / mu2:.1f}% of mu^2"
                if e.sigma > 0 and math.isfinite(mu2) and mu2 > 0
                else ""
            )
            lines.append(
                f"  {e.name}{it} [{e.kind}]: sigma = {e.sigma:.4f} (sensitivity {e.sensitivity:g}, "
                f"{e.replace_one_sensitivity:.4g} under replace-one{share})"
            )
        lines.append(f"neighbouring relation: {self.neighbouring}")
        lines.append(f"label set: {self.label_set}")
        lines.append(
            f"under replace-one instead: eps = {self.replace_one_epsilon():.4f} at the same delta"
        )
        lines.append(f"delta rule: {self.delta_rule}")
        lines.append(f"noise seed: {self.noise_seed_rule}")
        if self.run_nonce:
            lines.append(f"run: {self.run_nonce}")
        return "\n".join(lines)
