"""`augpe.pe.loop.evolve` driven directly, every component a small fake (tests/fakes/loop.py).

The state's noise is a fixed function the test chooses, `noisy = clean + 100 * position`, which
always prefers later candidates, while the clean vote prefers the first candidate of each class:
whatever the loop selects therefore shows which of the two it read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fakes.loop import CountingVote, FakeAPIs, MemoryState, StageTimer, TableEmbedder

from augpe.config import PEConfig
from augpe.pe.loop import evolve
from augpe.pe.output import PEResult, make_output
from augpe.records.sample import Sample

SIZES = np.array([2, 2])  # two classes, two parents each


def later_wins(t: int, clean: np.ndarray) -> np.ndarray:
    """The 'noise': large enough to overrule any clean count, deterministic."""
    return clean + 100.0 * np.arange(clean.size)


def evolve_with(
    *,
    apis: FakeAPIs | None = None,
    vote: CountingVote | None = None,
    state: MemoryState | None = None,
    timer: StageTimer | None = None,
    **pe: Any,
) -> PEResult:
    cfg = PEConfig(**{"iterations": 2, "samples": int(SIZES.sum()), "variations": 2, **pe})
    state = state or MemoryState(later_wins)
    return evolve(
        apis or FakeAPIs(),
        TableEmbedder(),
        vote or CountingVote(),
        state,
        state,
        make_output(cfg.output, cfg.min_votes, SIZES.size, cfg.relabel),
        SIZES,
        cfg,
        timer=timer or StageTimer(),  # type: ignore[arg-type]
        rng_for=lambda t: np.random.default_rng(t),
    )


def samples(state: MemoryState, t: int) -> list[Sample]:
    return state.populations[t].samples  # type: ignore[attr-defined, no-any-return]


def noisy_top(state: MemoryState, t: int, voters: np.ndarray | None = None) -> list[str]:
    """Ids of the sizes[c] best noisy candidates of each class at iteration t, best first."""
    pop = samples(state, t - 1)
    classes = np.array([s.class_id for s in pop]) if voters is None else voters
    noisy = state.noisy[t]
    out: list[str] = []
    for c, n in enumerate(SIZES):
        idx = np.flatnonzero(classes == c)
        out += [pop[i].id for i in idx[np.argsort(-noisy[idx], kind="stable")][:n]]
    return out


def test_the_loop_votes_once_per_iteration_and_releases_every_vote_through_the_state() -> None:
    vote, state, timer = CountingVote(), MemoryState(later_wins), StageTimer()
    evolve_with(vote=vote, state=state, timer=timer, iterations=3)
    assert len(vote.classes) == 3
    assert sorted(state.noisy) == [1, 2, 3] and sorted(state.populations) == [0, 1, 2]
    assert [t for t, _ in state.log] == [1, 2, 3]
    steps = ["embed", "vote", "select", "generate"]
    assert timer.stages == [(0, "generate")] + [
        (t, s) for t in (1, 2, 3) for s in steps if (t, s) != (3, "generate")
    ]


def test_parents_follow_the_noisy_release_not_the_clean_vote() -> None:
    state = MemoryState(later_wins)
    result = evolve_with(state=state, output="selected")
    first, second = samples(state, 0), samples(state, 1)
    clean_top = {first[0].id, first[2].id}  # the first candidate of each class
    parents = noisy_top(state, 1)
    assert not clean_top & set(parents)
    # keep_parents: the next population is the noisy parents, then one child of each
    assert [s.id for s in second[: len(parents)]] == parents
    assert {s.parent_id for s in second[len(parents) :]} == set(parents)
    # the output is the last noisy selection, best first, with its noisy votes
    assert [s.id for s in result.output] == noisy_top(state, 2)
    pos = {s.id: i for i, s in enumerate(second)}
    assert result.votes == {k: float(state.noisy[2][pos[k]]) for k in noisy_top(state, 2)}


def test_a_stored_noisy_release_is_reused_and_the_clean_vote_never_runs() -> None:
    first = MemoryState(later_wins)
    out1 = evolve_with(state=first)
    resumed = MemoryState(lambda t, clean: pytest.fail("noise drawn again"))
    resumed.populations, resumed.noisy = dict(first.populations), dict(first.noisy)
    apis, vote = FakeAPIs(), CountingVote()
    out2 = evolve_with(state=resumed, apis=apis, vote=vote)
    assert vote.classes == [] and apis.calls == []
    assert out2 == out1


@pytest.mark.parametrize("mode", ["selected", "all", "union"])
def test_output_modes(mode: str) -> None:
    state = MemoryState(later_wins)
    result = evolve_with(state=state, output=mode)
    last = samples(state, 1)
    pos = {s.id: i for i, s in enumerate(last)}
    if mode == "selected":
        assert [s.id for s in result.output] == noisy_top(state, 2)
    elif mode == "all":
        assert [s.id for s in result.output] == [s.id for s in last]
        assert result.votes == {s.id: float(state.noisy[2][i]) for i, s in enumerate(last)}
    else:  # every sample selected in any iteration, with its latest noisy vote
        ids1, ids2 = noisy_top(state, 1), noisy_top(state, 2)
        assert {s.id for s in result.output} == set(ids1) | set(ids2)
        pos0 = {s.id: i for i, s in enumerate(samples(state, 0))}
        for k in ids1:
            if k not in ids2:
                assert result.votes[k] == float(state.noisy[1][pos0[k]])
        for k in ids2:
            assert result.votes[k] == float(state.noisy[2][pos[k]])


def test_near_duplicates_get_no_vote_and_are_never_selected_or_output() -> None:
    # Every parent's first variation repeats it word for word; the noise prefers those copies.
    vote, state = CountingVote(), MemoryState(later_wins)
    result = evolve_with(
        apis=FakeAPIs(echo_first=True), vote=vote, state=state, dedup=0.99, output="all"
    )
    first = samples(state, 0)
    copies = [i for i, s in enumerate(first) if s.parent_id is not None]
    assert copies and all(vote.classes[0][i] == -1 for i in copies)
    assert not {first[i].id for i in copies} & set(noisy_top(state, 1, vote.classes[0]))
    assert [s.id for s in result.output] == [s.id for s in samples(state, 1) if s.parent_id is None]
    assert all(s.parent_id is None for s in result.output)


def test_without_dedup_the_copies_are_voted_on() -> None:
    vote = CountingVote()
    evolve_with(apis=FakeAPIs(echo_first=True), vote=vote, dedup=0.0)
    assert all((c >= 0).all() for c in vote.classes)


def test_lookahead_variations_are_reused_as_children_not_generated_again() -> None:
    apis, state = FakeAPIs(), MemoryState(later_wins)
    evolve_with(apis=apis, state=state, lookahead=1)
    gen0, gen1 = state.populations[0], state.populations[1]
    parents = noisy_top(state, 1)
    kids = gen1.samples[len(parents) :]  # type: ignore[attr-defined]
    by_id = {s.id: i for i, s in enumerate(gen0.samples)}  # type: ignore[attr-defined]
    assert [k.id for k in kids] == [gen0.lookahead[by_id[p]][0].id for p in parents]  # type: ignore[attr-defined]
    # iteration 1 generated only the next lookahead, one per candidate of the new population
    assert [c for c in apis.calls if c[1] == 1] == [("vary", 1, len(gen1.samples))]  # type: ignore[attr-defined]


def test_voted_output_keeps_every_candidate_of_any_iteration_above_min_votes() -> None:
    state = MemoryState(later_wins)  # noisy = clean + 100 * position: later candidates pass
    result = evolve_with(state=state, output="voted", min_votes=150.0)
    want: dict[str, float] = {}
    for t in (1, 2):
        for i, s in enumerate(samples(state, t - 1)):
            want[s.id] = float(state.noisy[t][i])  # the latest vote wins (a kept parent)
    kept = {k: v for k, v in want.items() if v >= 150.0}
    assert result.votes == kept and [s.id for s in result.output] == list(kept)
    assert 0 < len(kept) < len(want)  # the first candidates (noisy < 150) are left out


def test_every_output_keeps_each_candidate_of_any_iteration_once_whatever_its_votes() -> None:
    state = MemoryState(later_wins)
    result = evolve_with(state=state, output="every", min_votes=150.0)  # min_votes is ignored
    want: dict[str, float] = {}
    for t in (1, 2):
        for i, s in enumerate(samples(state, t - 1)):
            want[s.id] = float(state.noisy[t][i])  # under its latest vote
    assert result.votes == want and [s.id for s in result.output] == list(want)
    assert not result.weighted and min(want.values()) < 150.0
