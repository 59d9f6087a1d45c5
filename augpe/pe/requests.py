"""The loop's request plan in closed form: how many LLM requests each stage of `pe.loop.evolve`
makes (before retries). The dry run and the cost guard's estimates read it; a test checks it
against the requests a real run makes."""

from __future__ import annotations

from augpe.config import PEConfig

__all__ = ["request_counts"]


def request_counts(pe: PEConfig) -> dict[str, int]:
    """Requests per stage without retries: the random API, then L-1 (or L) variations per parent."""
    S, L, T, d = pe.samples, pe.variations, pe.iterations, pe.lookahead
    kids = L - 1 if pe.keep_parents else L
    population = S * L if pe.keep_parents else S * kids
    initial = S + S * (L - 1) + population * d
    per_round = S * kids + population * d - (S * min(d, kids) if d else 0)
    return {
        "random_api": S,
        "initial_total": initial,
        "per_round": per_round,
        "rounds": T - 1,
        "total": initial + per_round * (T - 1),
    }
