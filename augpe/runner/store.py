"""The run's state (implements `augpe.pe.loop.RunState`): populations and noisy votes, stored the
moment they exist, so a resume reuses them and the corpus equals an uninterrupted run's."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from augpe.atomic import read_json, write_json
from augpe.pe.loop import Candidates
from augpe.privacy.ledger import GaussianRelease
from augpe.privacy.mechanism import GaussianMechanism
from augpe.records.sample import Sample
from augpe.runner.layout import RunLayout

__all__ = ["RunStore"]


class RunStore:
    """DP-safe intermediate results of one run; the vote goes through the mechanism."""

    def __init__(
        self, layout: RunLayout, mechanism: GaussianMechanism, votes: list[GaussianRelease]
    ) -> None:
        self.layout = layout
        layout.state.mkdir(parents=True, exist_ok=True)
        self.mechanism = mechanism
        self.votes = votes  # the planned release of vote t is votes[t - 1]
        self.iter_log: dict[int, dict[str, object]] = {}

    def population(self, t: int, make: Callable[[], Candidates]) -> Candidates:
        path = self.layout.population(t)
        if path.is_file():
            raw = read_json(path)
            return Candidates(
                [Sample.from_dict(d) for d in raw["samples"]],
                [[Sample.from_dict(d) for d in kids] for kids in raw["lookahead"]],
            )
        gen = make()
        write_json(
            path,
            {
                "samples": [s.to_dict() for s in gen.samples],
                "lookahead": [[k.to_dict() for k in kids] for kids in gen.lookahead],
            },
        )
        return gen

    def noisy_votes(
        self, t: int, population: list[Sample], votes: Callable[[], np.ndarray]
    ) -> np.ndarray:
        """The DP release of iteration t, through the mechanism (booked, drawn once, stored)."""
        event = self.votes[t - 1]
        noisy = self.mechanism.release(
            event, votes, file=RunLayout.votes_file(t), tag=[s.id for s in population]
        )
        self.iter_log.setdefault(t, {}).update(  # noisy, hence DP-safe, summaries
            {
                "sigma": event.sigma,
                "noisy_votes_max": round(float(noisy.max(initial=0.0)), 3),
                "noisy_votes_sum": round(float(noisy.sum()), 3),
            }
        )
        return noisy

    def log_iteration(self, t: int, record: dict[str, object]) -> None:
        self.iter_log.setdefault(t, {}).update(record)
