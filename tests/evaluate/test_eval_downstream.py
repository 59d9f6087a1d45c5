"""Downstream classifiers (fast and papers' tier) and next-word prediction on constructed text."""

from __future__ import annotations

import pytest
from fakes.evaluation import BagEmbedder, labelled_texts

from augpe.evaluate.downstream import (
    FinetuneSettings,
    finetune_classifier,
    linear_probe,
    majority_accuracy,
)
from augpe.evaluate.nextword import LMSettings, next_word_prediction


def probe(train: tuple[list[str], list[str]], test: tuple[list[str], list[str]]) -> dict:
    emb = BagEmbedder()
    return linear_probe(emb.encode(train[0]), train[1], emb.encode(test[0]), test[1])


def test_linear_probe_beats_chance_on_separable_text() -> None:
    r = probe(labelled_texts(40, seed=1), labelled_texts(100, seed=2))
    assert r["majority_test_accuracy"] == 0.5
    assert r["accuracy"] > 0.9
    assert r["macro_f1"] > 0.9 and r["auc"] > 0.95
    assert "degenerate" not in r and "unseen_test_labels" not in r


def test_linear_probe_is_at_chance_when_labels_carry_no_signal() -> None:
    texts, labels = labelled_texts(60, seed=3)
    shuffled = labels[1:] + labels[:1]  # every label now belongs to the other class's text
    r = probe((texts, shuffled), labelled_texts(100, seed=4))
    assert r["accuracy"] < 0.3 and r["auc"] < 0.3  # it ranks the test texts backwards


def test_single_class_training_corpus_is_marked_not_crashed() -> None:
    texts, _ = labelled_texts(10, seed=5)
    r = probe((texts, ["great"] * 10), labelled_texts(20, seed=6))
    assert "single class ('great')" in r["degenerate"]
    assert r["accuracy"] == 0.5  # every test text predicted "great"


def test_test_labels_unseen_in_training_count_as_errors_and_are_listed() -> None:
    train = labelled_texts(40, seed=7)
    test_texts, test_labels = labelled_texts(20, seed=8)
    test_labels[:4] = ["meh"] * 4
    r = probe(train, (test_texts, test_labels))
    assert r["unseen_test_labels"] == {"meh": 4} and r["auc"] is None
    assert r["accuracy"] <= 16 / 20
    assert any("never seen in training" in n for n in r["notes"])


def test_majority_accuracy() -> None:
    assert majority_accuracy(["a", "a", "b"]) == pytest.approx(2 / 3)
    assert majority_accuracy([]) == 0.0


def test_papers_tier_tiny_encoder_learns_separable_text_and_reports_seeds() -> None:
    train, test = labelled_texts(40, seed=9, words=8), labelled_texts(30, seed=10, words=8)
    s = FinetuneSettings(
        model="tiny", epochs=4, seeds=(0, 1), batch_size=12, max_length=12, device="cpu", lr=3e-3
    )
    r = finetune_classifier(train[0], train[1], test[0], test[1], s)
    assert r["tier"] == "paper" and r["device"] == "cpu"
    assert [p["seed"] for p in r["per_seed"]] == [0, 1]
    assert r["accuracy"] > 0.7  # chance: 0.5
    assert r["accuracy_std"] >= 0.0
    for p in r["per_seed"]:  # the reported epoch is the best one on validation
        best_val = max(h["val_accuracy"] for h in p["history"])
        assert p["val_accuracy"] == best_val
        assert p["accuracy"] == next(
            h["accuracy"] for h in p["history"] if h["epoch"] == p["best_epoch"]
        )


def test_papers_tier_single_class_is_marked_without_training() -> None:
    r = finetune_classifier(
        ["a b c"] * 5, ["x"] * 5, ["a b"], ["y"], FinetuneSettings(model="tiny")
    )
    assert "single class" in r["degenerate"]
    assert r["accuracy"] == 0.0 and r["unseen_test_labels"] == {"y": 1}


def test_next_word_prediction_learns_the_language_it_is_trained_on() -> None:
    pattern = [f"the cat sat on the mat number {i % 3} and the dog ran" for i in range(32)]
    other = [f"quantum fields obey gauge symmetry in {i % 5} dimensions today" for i in range(32)]
    test = [f"the cat sat on the mat number {i} and the dog ran" for i in range(3)]
    s = LMSettings(model="tiny", epochs=5, batch_size=16, max_length=20, device="cpu", lr=3e-3)
    same = next_word_prediction(pattern, test, s)
    diff = next_word_prediction(other, test, s)
    assert same["accuracy"] > 0.6
    assert same["accuracy"] > diff["accuracy"] + 0.3
    assert same["perplexity"] < diff["perplexity"]
    assert same["eval_tokens"] > 0


def test_next_word_prediction_rejects_empty_corpora() -> None:
    with pytest.raises(ValueError, match="empty training corpus"):
        next_word_prediction([], ["a b c"])


def test_probe_weights_act_like_repeated_rows() -> None:
    emb = BagEmbedder()
    texts, labels = labelled_texts(30, seed=11)
    test = labelled_texts(60, seed=12)
    x, tx = emb.encode(texts), emb.encode(test[0])
    weights = [3.0 if i % 4 == 0 else 1.0 for i in range(len(texts))]
    rep = [i for i, w in enumerate(weights) for _ in range(int(w))]
    weighted = linear_probe(x, labels, tx, test[1], C=1.0, weights=weights)
    repeated = linear_probe(x[rep], [labels[i] for i in rep], tx, test[1], C=1.0)
    assert weighted["auc"] == pytest.approx(repeated["auc"], abs=2e-3)
    # weights that zero out one class's signal change the fit
    flat = linear_probe(x, labels, tx, test[1], C=1.0)
    skew = [1.0 if y == labels[0] else 0.01 for y in labels]
    skewed = linear_probe(x, labels, tx, test[1], C=1.0, weights=skew)
    assert skewed["accuracy"] < flat["accuracy"]
    with pytest.raises(ValueError, match="weights"):
        linear_probe(x, labels, tx, test[1], weights=[-1.0] * len(labels))


def test_papers_tier_fine_tunes_the_shipped_minilm_offline() -> None:
    train, test = labelled_texts(48, seed=11, words=8), labelled_texts(30, seed=12, words=8)
    s = FinetuneSettings(
        model="minilm", epochs=3, seeds=(0,), batch_size=16, max_length=16, device="cpu", lr=1e-4
    )
    r = finetune_classifier(train[0], train[1], test[0], test[1], s)
    assert r["model"] == "minilm" and r["tier"] == "paper"
    assert r["accuracy"] > 0.8  # chance: 0.5


def test_a_fine_tuned_minilm_is_said_to_start_in_the_vote_space() -> None:
    from augpe.evaluate.learners import VOTE_SPACE, learner_info
    from augpe.evaluate.options import EvalOptions

    def shares(model: str) -> list[str]:
        opts = EvalOptions(tiers=("paper",), independent=False)
        opts.finetune = FinetuneSettings(model=model)
        return learner_info(opts, "default", None)["paper"]["shares"]

    assert shares("minilm") == [VOTE_SPACE + " (its starting weights)"]
    assert shares("roberta-base") == []
