"""The one-run audit: the estimator against the paper, its validity and monotonicity, the attack
scores, and the end-to-end audit with a generator that leaks (eps = inf) and one that must not
(eps = 1)."""

from __future__ import annotations

import json
import math
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from fakes.pe import (
    FakeLLM,
    HashEmbedder,
    near_duplicate,
    private_rows,
    public_pool,
    small_config,
    write_jsonl,
)

from augpe.audit import (
    Canary,
    NgramModel,
    audit,
    auroc,
    epsilon_lower_bound,
    guesses_from_scores,
    make_canaries,
    ngram_secret_scores,
    one_run_bound,
    p_value_one_run,
    tpr_at_fpr,
)
from augpe.config import Config
from augpe.privacy import PrivacySettings, planned_releases
from augpe.records.data import load_private_data
from augpe.runner.checks import resolved_config


# ---- the estimator ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("m", "r", "v", "delta", "published"),
    [
        (1000, 100, 75, 1e-4, 0.673),  # arXiv 2305.08846, App. D worked example
        (100000, 1510, 1439, 1e-5, 2.675),  # Sec. 7 (Fig. 11), printed truncated (2.6758...)
    ],
)
def test_bound_reproduces_the_papers_printed_values(
    m: int, r: int, v: int, delta: float, published: float
) -> None:
    assert epsilon_lower_bound(m, r, v, delta, 0.05) == pytest.approx(published, abs=1e-3)


def test_perfect_guessing_with_many_canaries_gives_a_large_bound() -> None:
    assert epsilon_lower_bound(1000, 1000, 1000, 1e-6, 0.05) > 5.0
    assert epsilon_lower_bound(100, 50, 50, 1e-4, 0.05) > 2.0


def test_chance_level_guessing_gives_zero() -> None:
    assert epsilon_lower_bound(1000, 500, 250, 1e-5, 0.05) == 0.0
    assert epsilon_lower_bound(1000, 500, 260, 1e-5, 0.05) == 0.0  # +10 is within chance


def test_bound_is_monotone_in_accuracy_and_in_canaries() -> None:
    bounds = [epsilon_lower_bound(400, 200, v, 1e-5, 0.05) for v in range(100, 201, 5)]
    assert all(b1 <= b2 + 1e-9 for b1, b2 in pairwise(bounds))
    assert bounds[0] == 0.0 and bounds[-1] > 3.0
    # Same accuracy (90%), more guesses: more evidence, a larger bound.
    by_r = [epsilon_lower_bound(10 * r, r, int(0.9 * r), 1e-6, 0.05) for r in (20, 100, 1000)]
    assert by_r[0] < by_r[1] < by_r[2]


def test_delta_term_only_lowers_the_bound() -> None:
    no_delta = epsilon_lower_bound(100, 50, 45, 0.0, 0.05)
    with_delta = epsilon_lower_bound(100, 50, 45, 1e-3, 0.05)
    assert 0.0 < with_delta < no_delta
    # p-value: Binomial tail plus the delta term, never below the pure-DP tail.
    assert p_value_one_run(100, 50, 45, 1.0, 1e-3) > p_value_one_run(100, 50, 45, 1.0, 0.0)


def test_bound_is_valid_for_an_eps_dp_randomised_response() -> None:
    """The defining property: for a mechanism that IS eps-DP, eps_lb > eps at most beta of the
    time. Randomised response on the inclusion bits is exactly eps-DP per canary."""
    eps, m, trials = 1.0, 200, 200
    rng = np.random.default_rng(0)
    over = 0
    for _ in range(trials):
        included = rng.random(m) < 0.5
        keep = rng.random(m) < math.exp(eps) / (1 + math.exp(eps))
        scores = np.where(keep == included, 1.0, 0.0) + 0.01 * rng.random(m)  # RR output, tie noise
        b = one_run_bound(scores, included, delta=0.0, beta=0.05, k=m // 2)
        over += b.eps_lower_bound > eps
    assert over / trials <= 0.05 + 0.04  # beta plus Monte-Carlo slack (3 sd at 200 trials)


def test_random_scores_give_about_zero() -> None:
    rng = np.random.default_rng(1)
    lbs = []
    for _ in range(100):
        included = rng.random(100) < 0.5
        lbs.append(one_run_bound(rng.random(100), included, 1e-4).eps_lower_bound)
    assert np.mean(np.array(lbs) > 0) <= 0.1
    assert max(lbs) < 1.0


def test_k_search_is_bonferroni_corrected() -> None:
    rng = np.random.default_rng(2)
    included = rng.random(200) < 0.5
    scores = included + rng.normal(0, 0.7, 200)
    single = one_run_bound(scores, included, 1e-5, 0.05, k=50)
    searched = one_run_bound(scores, included, 1e-5, 0.05, k=[10, 25, 50, 100])
    assert searched.beta == pytest.approx(0.05 / 4)
    assert single.beta == 0.05
    # At k = 50 the corrected test is stricter than the single pre-registered one.
    at_50 = epsilon_lower_bound(200, 100, single.correct, 1e-5, 0.05 / 4)
    assert at_50 < single.eps_lower_bound


def test_guesses_take_top_and_bottom_k_and_abstain_between() -> None:
    g = guesses_from_scores(np.array([0.1, 0.9, 0.5, 0.8, 0.2, 0.3]), 2, 2)
    assert g.tolist() == [-1, 1, 0, 1, -1, 0]
    with pytest.raises(ValueError):
        guesses_from_scores(np.zeros(3), 2, 2)


def test_auroc_and_tpr_at_low_fpr() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0], dtype=bool)
    assert auroc(np.array([3, 2, 1, 0, -1, -2]), labels) == 1.0
    assert auroc(np.array([0, 0, 0, 0, 0, 0]), labels) == 0.5
    assert auroc(np.array([-3, -2, -1, 0, 1, 2]), labels) == 0.0
    # One negative outscores two positives: at FPR 0 only the top positive is caught.
    scores = np.array([5, 3, 2, 4, 1, 0])
    assert tpr_at_fpr(scores, labels, 0.01) == pytest.approx(1 / 3)
    assert tpr_at_fpr(scores, labels, 0.34) == 1.0


def test_ngram_model_is_a_distribution_and_prefers_seen_sequences() -> None:
    corpus = ["the cat sat on the mat", "the dog sat on the log", "a cat ate the fish"]
    lm = NgramModel(corpus, n=3)
    vocab = list(lm.unigram) + ["<never-seen>"]  # one unknown word stands for all unknown words
    for ctx in (["sat", "on"], ["the"], [], ["zebra", "quartz"]):
        assert sum(math.exp(lm.logprob(w, ctx)) for w in vocab) == pytest.approx(1.0, abs=1e-9)
    assert lm.logprob("mat", ["on", "the"]) > lm.logprob("fish", ["on", "the"])
    leaked = Canary("c0", "the cat", "sat on the mat", "all", True)
    fresh = Canary("c1", "the cat", "mat the on sat", "all", False)
    s = ngram_secret_scores(lm, [leaked, fresh])
    assert s[0] > 0 > s[1] or s[0] > s[1] + 1.0


# ---- canaries ------------------------------------------------------------------------------
def test_canaries_have_real_prefixes_unique_secrets_and_fair_coins(tmp_path: Path) -> None:
    data = load_private_data(
        small_config(write_jsonl(tmp_path / "d.jsonl", private_rows(400)), tmp_path / "r").data
    )
    canaries, held = make_canaries(data, 200, np.random.default_rng(0))
    assert len(canaries) == 200 and len(set(held.tolist())) == 200
    assert len({c.secret for c in canaries}) == 200
    for c, i in zip(canaries, held):
        assert data.texts[i].startswith(c.prefix)
        assert c.class_name == data.class_names[data.class_ids[i]]
        assert c.text not in data.texts
    assert 70 <= sum(c.included for c in canaries) <= 130


# ---- end to end ---------------------------------------------------------------------------
def _leaky_setup(
    tmp_path: Path, epsilon: float, m: int = 100
) -> tuple[Config, list[Canary], FakeLLM]:
    """Private records resemble a public pool, and the pool also holds a near-duplicate of every
    canary (in or out): what reaches the corpus is decided by the vote alone. Selection by
    probability (not rank) so that with no noise zero-vote samples are never picked."""
    pool = public_pool(300)
    data_path = write_jsonl(tmp_path / "private.jsonl", private_rows(300, like=pool))
    cfg = small_config(
        data_path,
        tmp_path / "run",
        epsilon,
        privacy={"class_counts": "uniform"},
        # one vote per record (k = 1): the power figures below are for the sharpest vote
        # output soft: only texts the noisy votes vouch for are released (with `every`, every
        # candidate is, and a canary reaches the corpus through the parents' selection alone)
        pe={
            "iterations": 2,
            "samples": 750,
            "variations": 2,
            "selection": "prob",
            "k": 1,
            "output": "soft",
        },
    )
    rng = np.random.default_rng(5)
    canaries, _ = make_canaries(load_private_data(cfg.data), m, rng)
    for c in canaries:
        pool[c.class_name].append(near_duplicate(c.text, rng))
    return cfg, canaries, FakeLLM(pool)


def test_audit_detects_a_generator_that_leaks_when_there_is_no_noise(tmp_path: Path) -> None:
    cfg, canaries, llm = _leaky_setup(tmp_path, math.inf)
    report = audit(
        cfg, canaries=canaries, llm=llm, embedder=HashEmbedder(256), workdir=tmp_path / "audit"
    )
    assert report.scores["nn_cosine"].auroc > 0.8
    assert report.scores["ngram_secret"].auroc > 0.8
    assert report.scores["nn_cosine"].tpr_at_fpr["5%"] > 0.5
    assert report.eps_lower_bound > 0.75
    assert report.claimed_epsilon == math.inf
    # Delta is the run's own, fixed from the config before any data (or coin flip) is read.
    assert report.delta == planned_releases(PrivacySettings.from_config(resolved_config(cfg))).delta
    # Nothing is left behind: the workdir held a private data copy and the coin flips.
    assert not any((tmp_path / "audit").iterdir())


def test_audit_bound_stays_below_the_claimed_epsilon_at_eps_1(tmp_path: Path) -> None:
    cfg, canaries, llm = _leaky_setup(tmp_path, 1.0)
    report = audit(cfg, canaries=canaries, llm=llm, embedder=HashEmbedder(256))
    assert report.claimed_epsilon <= 1.0
    assert report.eps_lower_bound <= 1.0
    assert report.scores["nn_cosine"].auroc < 0.75  # one vote drowns in sigma ~ 3


def test_audit_keep_writes_report_and_marks_private_files(tmp_path: Path) -> None:
    cfg, canaries, llm = _leaky_setup(tmp_path, 4.0, m=20)
    work = tmp_path / "kept"
    report = audit(
        cfg, canaries=canaries, llm=llm, embedder=HashEmbedder(64), workdir=work, keep=True
    )
    names = {p.name for p in work.iterdir()}
    assert {
        "audit-report.json",
        "audit-data.PRIVATE.jsonl",
        "canaries.PRIVATE.json",
        "run",
        "run.PRIVATE",
    } <= names
    assert report.run_dir == str(work / "run")
    assert "eps lower bound" in report.summary()


def test_audit_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`augpe audit` passes its options through and writes the JSON report."""
    import augpe.audit as audit_module
    from augpe.cli import main

    cfg, canaries, llm = _leaky_setup(tmp_path, 2.0, m=20)
    (tmp_path / "c.yaml").write_text(
        f"data: {{path: {cfg.data.path}, label_columns: [label]}}\n"
        "privacy: {class_counts: uniform, noise_seed: 1}\n"
        "generation: {prompts: generic}\npe: {iterations: 2, samples: 750, selection: prob}\n"
    )
    seen = {}

    def fake_audit(c: Config, m: int, **kw: object):  # type: ignore[no-untyped-def]
        seen.update(kw, m=m, epsilon=c.privacy.epsilon)
        return audit(c, canaries=canaries, llm=llm, embedder=HashEmbedder(64))

    monkeypatch.setattr(audit_module, "audit", fake_audit)
    args = ["audit", str(tmp_path / "c.yaml"), "--set", "privacy.epsilon=3", "-m", "20"]
    assert main([*args, "--k", "3,5", "--report", str(tmp_path / "r.json"), "-q"]) == 0
    assert seen["m"] == 20 and seen["k"] == [3, 5] and seen["epsilon"] == 3.0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["canaries"] == 20 and "eps_lower_bound" in report
