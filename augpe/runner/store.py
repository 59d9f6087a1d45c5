"""The run's population cache (implements `augpe.pe.loop.PopulationCache`): every population
stored the moment it exists, so a resume reuses it and the corpus equals an uninterrupted run's,
and the iteration log (noisy summaries and each vote's sigma)."""

from __future__ import annotations

from collections.abc import Callable

from augpe.atomic import read_json, write_json
from augpe.pe.loop import Candidates
from augpe.records.sample import Sample
from augpe.runner.layout import RunLayout

__all__ = ["RunStore"]


class RunStore:
    """DP-safe intermediate results of one run: populations (synthetic text) and the log."""

    def __init__(self, layout: RunLayout, sigmas: list[float]) -> None:
        self.layout = layout
        layout.state.mkdir(parents=True, exist_ok=True)
        self.sigmas = sigmas  # vote t's sigma is sigmas[t - 1]
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

    def log_iteration(self, t: int, record: dict[str, object]) -> None:
        self.iter_log.setdefault(t, {"sigma": self.sigmas[t - 1]}).update(record)
