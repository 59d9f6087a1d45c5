"""The PE options: tidy generations, near-duplicate removal, the union output, DP keywords.
Each pins a behaviour and, for the new DP release, its sensitivity."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from fakes.pe import FakeLLM, HashEmbedder, private_rows, public_pool, small_config, write_jsonl

from augpe.config import Config
from augpe.errors import ConfigError
from augpe.pe.loop import best_voted, vote_classes
from augpe.pe.textops import clean_generation, strip_label_echo, strip_markup, trim_unfinished
from augpe.privacy.keywords import keyword_histogram, public_vocabulary, select_keywords
from augpe.privacy.vote import vote_histogram
from augpe.records.sample import Sample
from augpe.runner import compose as pipeline


# ---- tidy generations (shapes seen in the demo's real SmolLM2 outputs) ------------------------
@pytest.mark.parametrize(
    "raw, label, want",
    [
        (
            "Positive, 5 stars product review rephrased in a casual tone:\nThese chips are so crunchy.",
            "positive, 5 stars",
            "These chips are so crunchy.",
        ),
        (
            'I gave it "mixed or negative, 1 to 4 stars" because the tea was stale.',
            "mixed or negative, 1 to 4 stars",
            "I gave it because the tea was stale.",
        ),
    ],
)
def test_an_echoed_class_description_is_cut(raw: str, label: str, want: str) -> None:
    assert strip_label_echo(raw, label) == (want, True)


def test_a_text_without_the_description_is_left_alone() -> None:
    text = "Five stars from me, the coffee is great."
    assert strip_label_echo(text, "positive, 5 stars") == (text, False)


def test_an_unfinished_last_sentence_is_cut_but_not_the_whole_text() -> None:
    assert trim_unfinished("Great coffee. Smooth and rich. The bag was") == (
        "Great coffee. Smooth and rich.",
        True,
    )
    one = "The bag was torn and the beans were all over the"
    assert trim_unfinished(one) == (one, False)  # nothing complete to keep: keep it as it is
    assert trim_unfinished("Tasty! (Really.)") == ("Tasty! (Really.)", False)


def test_a_meta_sentence_before_the_text_is_dropped() -> None:
    raw = "Here's a revised version of the review.\nMy dog loves this food and eats it all."
    assert clean_generation(raw) == "My dog loves this food and eats it all."
    keep = "Here is the best tea I have found in years, honestly."
    assert clean_generation(keep) == keep


@pytest.mark.parametrize(
    "raw, want",
    [
        ("I <i>love</i> this tea.<br /><br />Great value", "I love this tea. Great value"),
        ('See <a href="https://example.com">the site</a> for more.', "See the site for more."),
        ("<p>First point.</p><P>Second point.</P>", "First point. Second point."),
    ],
)
def test_html_tags_a_web_trained_model_writes_are_cut(raw: str, want: str) -> None:
    assert strip_markup(raw) == (want, True)


def test_text_with_angle_brackets_but_no_tags_is_left_alone() -> None:
    for text in ("Keep it x < 5 and y > 3.", "I <3 this snack", "Rated <great> by me"):
        assert strip_markup(text) == (text, False)


def test_tidy_cuts_the_tags_of_each_generation_and_counts_them() -> None:
    from augpe.config import generation_config
    from augpe.llm.base import Generation, GenerationRequest, Usage
    from augpe.pe.apis import TextAPIs
    from augpe.pe.prompts import load_prompt_set

    class TaggingLLM:
        name = "tagging"
        usage = Usage()

        def generate(self, requests: list[GenerationRequest], desc: str = "") -> list[Generation]:
            return [Generation(text=f"The tea {r.seed} was <b>fresh</b>.") for r in requests]

        def close(self) -> None: ...

    def texts(tidy: bool) -> tuple[list[str], int]:
        cfg = generation_config(tidy=tidy)
        apis = TextAPIs(TaggingLLM(), load_prompt_set("generic"), cfg, ["positive"], seed=3)
        samples = apis.random([0, 0, 0], iteration=0)
        return [x.text for x in samples], apis.stats.tidied["markup"]

    kept, cut = texts(tidy=True)
    assert cut == 3 and all(re.fullmatch(r"The tea \d+ was fresh\.", t) for t in kept), kept
    assert texts(tidy=False) == ([t.replace("fresh", "<b>fresh</b>") for t in kept], 0)


# ---- near-duplicates -------------------------------------------------------------------------
def _samples(classes: list[int]) -> list[Sample]:
    return [Sample(f"s{i}", f"text {i}", c, 0, None, "m", "random") for i, c in enumerate(classes)]


def test_near_duplicates_are_kept_out_of_the_vote() -> None:
    emb = np.array([[1.0, 0.0], [0.999, 0.04], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    samples = _samples([0, 0, 0, 1])
    voters = vote_classes(samples, emb, 0.99)
    assert voters.tolist() == [0, -1, 0, 1]  # a copy in another class is not a duplicate
    assert vote_classes(samples, emb, 0.0).tolist() == [0, 0, 0, 1]  # off
    priv = np.array([[0.999, 0.04], [0.0, 1.0]], dtype=np.float32)
    hist = vote_histogram(priv, np.zeros(2, dtype=np.int64), emb, voters, k=1)
    assert hist[1] == 0.0 and hist.sum() == 2.0  # the vote went to the first copy


# ---- DP keywords -----------------------------------------------------------------------------
VOCAB = ("coffee", "bitter", "smooth", "dog", "treats", "stale", "price")


def test_keyword_histogram_moves_by_at_most_one_when_a_record_is_removed() -> None:
    texts = ["Smooth coffee, fair price", "Bitter coffee", "dog treats were stale", "no words here"]
    classes = np.array([0, 0, 1, 1])
    full = keyword_histogram(texts, classes, 2, VOCAB)
    for i in range(len(texts)):
        keep = [j for j in range(len(texts)) if j != i]
        rest = keyword_histogram([texts[j] for j in keep], classes[keep], 2, VOCAB)
        assert np.linalg.norm(full - rest) <= 1.0 + 1e-12
    assert np.linalg.norm(full - keyword_histogram(texts[:3], classes[:3], 2, VOCAB)) == 0.0


def test_user_level_keywords_move_by_at_most_one_when_a_user_is_removed() -> None:
    texts = ["coffee price", "coffee smooth", "coffee bitter", "dog treats", "stale treats"]
    classes = np.array([0, 0, 0, 1, 1])
    users = np.array(["a", "a", "a", "b", "c"])
    full = keyword_histogram(texts, classes, 2, VOCAB, users)
    rest = keyword_histogram(texts[3:], classes[3:], 2, VOCAB, users[3:])
    assert np.linalg.norm(full - rest) == pytest.approx(1.0)  # user a, three records: still 1


def test_keywords_are_the_words_above_the_noise_threshold() -> None:
    noisy = np.array([9.0, 0.1, 6.0, -3.0, 0.0, 0.0, 0.0, 4.0, 11.0, 0.0, 0.0, 0.0, 0.0, 5.5])
    assert select_keywords(noisy, 2, VOCAB, sigma=1.0, top=5) == [
        ["coffee", "smooth"],
        ["bitter", "price"],
    ]
    assert select_keywords(noisy, 2, VOCAB, sigma=1.0, top=1) == [["coffee"], ["bitter"]]


def test_a_record_counts_only_its_m_rarest_words_each_one_over_root_m() -> None:
    texts = ["coffee bitter smooth dog treats", "price"]
    hist = keyword_histogram(texts, np.array([0, 1]), 2, VOCAB, per_record=2)
    rows = hist.reshape(2, len(VOCAB))
    # the rank is VOCAB's order (a later word is rarer): dog and treats are the record's rarest
    assert {VOCAB[i] for i in np.flatnonzero(rows[0])} == {"dog", "treats"}
    assert rows[0][np.flatnonzero(rows[0])] == pytest.approx([2**-0.5] * 2)
    assert rows[1][VOCAB.index("price")] == 1.0  # fewer words than m: 1/sqrt(its own count)
    for i in range(2):  # still at most 1 in L2 when a record is removed
        rest = keyword_histogram(texts[1 - i : 2 - i], np.array([1 - i]), 2, VOCAB, per_record=2)
        assert np.linalg.norm(hist - rest) <= 1.0 + 1e-12
    rarity = {w: -i for i, w in enumerate(VOCAB)}  # a public rank that reverses the order
    rows = keyword_histogram(texts[:1], np.array([0]), 2, VOCAB, per_record=2, rarity=rarity)
    assert {VOCAB[i] for i in np.flatnonzero(rows)} == {"coffee", "bitter"}


def test_discriminative_keywords_leave_out_the_words_every_class_uses() -> None:
    # class 0: coffee 40, smooth 12; class 1: coffee 40, stale 15 (sigma 1, z 5)
    rows = np.zeros((2, len(VOCAB)))
    rows[0, VOCAB.index("coffee")], rows[0, VOCAB.index("smooth")] = 40.0, 12.0
    rows[1, VOCAB.index("coffee")], rows[1, VOCAB.index("stale")] = 40.0, 15.0
    frequent = select_keywords(rows.ravel(), 2, VOCAB, sigma=1.0, top=5)
    assert frequent == [["coffee", "smooth"], ["coffee", "stale"]]
    told_apart = select_keywords(rows.ravel(), 2, VOCAB, sigma=1.0, top=5, discriminative=True)
    assert told_apart == [["smooth"], ["stale"]]
    one_class = select_keywords(rows[0], 1, VOCAB, sigma=1.0, top=5, discriminative=True)
    assert one_class == [["coffee", "smooth"]]  # nothing to tell apart: the frequent rule


def test_public_vocabulary_is_whole_words_without_stop_words() -> None:
    vocab = public_vocabulary()
    assert len(vocab) > 15_000 and "coffee" in vocab
    assert "the" not in vocab and not any(w.startswith("#") or len(w) < 3 for w in vocab)


class PromptSpy(FakeLLM):
    def __init__(self, pool: dict[str, list[str]]) -> None:
        super().__init__(pool)
        self.prompts: list[str] = []

    def generate(self, requests, desc=""):
        self.prompts += [r.messages[-1]["content"] for r in requests]
        return super().generate(requests, desc)


def _worded_rows(n: int) -> list[dict[str, str]]:
    rng = np.random.default_rng(4)
    pos = ["coffee", "smooth", "delicious", "fresh", "aroma"]
    neg = ["stale", "broken", "refund", "expired", "soggy"]
    rows = []
    for i in range(n):
        words = pos if i % 2 == 0 else neg
        picked = rng.choice(words, size=3, replace=False)
        rows.append(
            {
                "text": f"The {' and '.join(picked)} order {i}.",
                "label": "posclass" if i % 2 == 0 else "negclass",
            }
        )
    return rows


def test_a_keyword_run_books_the_release_and_fills_prompts_with_dp_words_only(
    tmp_path: Path,
) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", _worded_rows(400))
    cfg = small_config(data, tmp_path / "k", 8.0, privacy={"keywords": True, "keyword_share": 0.5})
    spy = PromptSpy(public_pool(20))
    result = pipeline.run(cfg, show_progress=False, llm=spy, embedder=HashEmbedder(32))
    kinds = [e.kind for e in result.ledger.events]
    assert kinds.count("keywords") == 1 and result.ledger.epsilon() <= 8.0
    keywords = result.summary["keywords"]
    assert set(keywords) == {"posclass", "negclass"}
    assert {"coffee", "smooth"} <= set(keywords["posclass"]) and "stale" in keywords["negclass"]
    assert "stale" not in keywords["posclass"]
    vocab = set(public_vocabulary())
    assert all(w in vocab for ws in keywords.values() for w in ws)  # public words only
    words = {w for ws in keywords.values() for w in ws}
    used = [p for p in spy.prompts if set(re.findall(r"[a-z]+", p)) & words]
    assert used  # the random API did use them
    shown = [ln for ln in result.ledger.summary().splitlines() if "[keywords]" in ln]
    assert len(shown) == 1 and "% of mu^2" in shown[0]  # `augpe budget` shows its share
    stored = json.loads((tmp_path / "k" / "state" / "keywords.json").read_text())
    assert stored["sigma"] == next(e.sigma for e in result.ledger.events if e.kind == "keywords")


def test_keywords_fill_the_variation_prompts_of_a_set_with_keyword_slots(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", _worded_rows(400))
    cfg = small_config(
        data,
        tmp_path / "k",
        8.0,
        privacy={"keywords": True, "keyword_share": 0.5},
        generation={"prompts": "generic_v2"},
    )
    spy = PromptSpy(public_pool(20))
    result = pipeline.run(cfg, show_progress=False, llm=spy, embedder=HashEmbedder(32))
    keywords = {w for ws in result.summary["keywords"].values() for w in ws}
    assert keywords
    variations = [p for p in spy.prompts if p.startswith("Here is a text labelled")]
    assert variations and all(set(re.findall(r"[a-z]+", p)) & keywords for p in variations)


def test_keywords_with_a_prompt_set_without_a_keyword_slot_are_refused(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", private_rows(40))
    cfg = small_config(
        data, tmp_path / "r", 2.0, privacy={"keywords": True}, generation={"prompts": "reviews"}
    )
    with pytest.raises(ConfigError, match="no \\{keyword\\} slot"):
        pipeline.run(
            cfg, show_progress=False, llm=FakeLLM(public_pool(5)), embedder=HashEmbedder(8)
        )
    assert not (tmp_path / "r" / "state" / "class_counts.json").exists()  # nothing was drawn


def test_keywords_auto_follow_the_prompt_set_and_the_run_folder_states_the_choice(
    tmp_path: Path,
) -> None:
    from augpe.runner.checks import resolved_config

    data = write_jsonl(tmp_path / "d.jsonl", _worded_rows(400))

    def cfg(out: str, prompts: str, **privacy: object) -> Config:
        return small_config(
            data, tmp_path / out, 8.0, privacy=privacy, generation={"prompts": prompts}
        )

    defaults = Config.model_validate({"data": {"path": str(data)}})
    assert defaults.privacy.keywords == "auto" and defaults.generation.prompts == "generic"
    assert resolved_config(defaults).privacy.keywords is False
    assert resolved_config(cfg("v2", "generic_v2")).privacy.keywords is True
    assert resolved_config(cfg("b", "generic")).privacy.keywords is False
    assert resolved_config(cfg("c", "generic_v2", keywords=False)).privacy.keywords is False
    result = pipeline.run(
        cfg("a", "generic_v2", keyword_share=0.5),
        show_progress=False,
        llm=PromptSpy(public_pool(20)),
        embedder=HashEmbedder(32),
    )
    assert [e.kind for e in result.ledger.events].count("keywords") == 1
    stored = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert stored["privacy"]["keywords"] is True  # the folder says what auto decided
    plain = pipeline.run(
        cfg("b", "amazon_food"),
        show_progress=False,
        llm=FakeLLM(public_pool(20)),
        embedder=HashEmbedder(32),
    )
    assert "keywords" not in [e.kind for e in plain.ledger.events]


def test_centroids_auto_are_on_for_a_public_two_class_label_set_only(tmp_path: Path) -> None:
    from augpe.runner.checks import resolved_config

    data = write_jsonl(tmp_path / "d.jsonl", _worded_rows(400))

    def on(labels: list[str] | None, **privacy: object) -> object:
        c = small_config(data, tmp_path / "o", 8.0, privacy=privacy, data={"labels": labels})
        return resolved_config(c).privacy.centroids

    assert on(["negclass", "posclass"]) is True
    assert on(None) is False  # a label set read from the data decides no budget
    assert on(["negclass", "posclass", "third"]) is False
    assert on(["negclass", "posclass"], centroids=False) is False
    result = pipeline.run(
        small_config(data, tmp_path / "r", 8.0, data={"labels": ["negclass", "posclass"]}),
        show_progress=False,
        llm=FakeLLM(public_pool(20)),
        embedder=HashEmbedder(32),
    )
    assert [e.kind for e in result.ledger.events].count("centroids") == 1
    stored = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert stored["privacy"]["centroids"] is True


# ---- the union output -------------------------------------------------------------------------
def test_union_output_holds_every_selected_sample_once(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", private_rows(60))
    out = {}
    for mode in ("selected", "union"):
        cfg = small_config(
            data, tmp_path / mode, 2.0, pe={"iterations": 3, "samples": 10, "output": mode}
        )
        out[mode] = pipeline.run(
            cfg, show_progress=False, llm=FakeLLM(public_pool(30)), embedder=HashEmbedder(32)
        )
    last = {r["id"] for r in out["selected"].samples}
    union = [r["id"] for r in out["union"].samples]
    assert len(union) == len(set(union)) and last <= set(union) and len(union) > len(last)
    assert {r["iteration"] for r in out["union"].samples} >= {0, 1}


# ---- the cross-class vote (pe.relabel) --------------------------------------------------------
def _cross_case(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    priv = rng.standard_normal((30, 6)).astype(np.float32)
    priv_class = rng.integers(0, 3, size=30)
    syn = rng.standard_normal((8, 6)).astype(np.float32)
    syn_class = np.array([0, 1, 2, 0, 1, -1, 2, 0])
    return priv, priv_class, syn, syn_class


@pytest.mark.parametrize("k", [1, 3, 4])
def test_cross_class_vote_moves_by_at_most_one_when_a_record_is_removed(k: int) -> None:
    priv, pc, syn, sc = _cross_case(k)
    full = vote_histogram(priv, pc, syn, sc, k=k, label_bins=3)
    assert full.shape == (8 * 3,) and full.sum() == pytest.approx(30 * k / np.sqrt(k))
    assert full.reshape(8, 3)[5].sum() == 0.0  # a near-duplicate (-1) gets no vote
    for i in range(len(priv)):
        keep = np.arange(len(priv)) != i
        rest = vote_histogram(priv[keep], pc[keep], syn, sc, k=k, label_bins=3)
        assert np.linalg.norm(full - rest) == pytest.approx(1.0)  # exactly one record's vector


def test_cross_class_vote_counts_each_records_label_at_its_nearest_candidate_of_any_class() -> None:
    syn = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    priv = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]], dtype=np.float32)
    table = vote_histogram(
        priv, np.array([1, 1, 0]), syn, np.array([0, 1]), k=1, label_bins=2
    ).reshape(2, 2)
    assert table.tolist() == [
        [0.0, 2.0],
        [1.0, 0.0],
    ]  # candidate 0 (written as class 0): 2 of class 1
    own = vote_histogram(priv, np.array([1, 1, 0]), syn, np.array([0, 1]), k=1)
    assert own.tolist() == [1.0, 2.0]  # the per-class vote: each record only sees its own class


def test_relabel_gives_each_candidate_its_voters_noisy_majority_label() -> None:
    from augpe.pe.loop import Candidates, relabel

    pop = _samples([0, 0, 1, 1])
    kids = [
        [Sample(f"k{i}", "kid", s.class_id, 0, s.id, "m", "rephrase")] for i, s in enumerate(pop)
    ]
    noisy = np.array([[5.0, 1.0], [0.5, 7.0], [2.0, 3.0], [9.0, 0.0]]).ravel()
    voters = np.array([0, 0, 1, -1])
    gen, score, classes = relabel(Candidates(pop, kids), noisy, voters)
    assert [s.class_id for s in gen.samples] == [0, 1, 1, 1]  # the -1 keeps its label
    assert [ks[0].class_id for ks in gen.lookahead] == [0, 1, 1, 1]  # its variations follow it
    assert classes.tolist() == [0, 1, 1, -1] and score.tolist() == [5.0, 7.0, 3.0, 9.0]
    assert gen.samples[0] is pop[0] and gen.samples[1].text == pop[1].text


def test_a_relabel_run_books_one_vote_per_iteration_and_keeps_the_sensitivity(
    tmp_path: Path,
) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", private_rows(60))
    cfg = small_config(data, tmp_path / "x", 2.0, pe={"iterations": 2, "relabel": True})
    result = pipeline.run(
        cfg, show_progress=False, llm=FakeLLM(public_pool(30)), embedder=HashEmbedder(32)
    )
    votes = [e for e in result.ledger.events if e.kind == "vote_histogram"]
    assert len(votes) == 2 and result.ledger.epsilon() <= 2.0
    stored = json.loads((tmp_path / "x" / "state" / "votes_01.json").read_text())
    assert len(stored["noisy"]) == 2 * len(stored["tag"])  # (candidate, class) bins
    assert {r["class"] for r in result.samples} <= {"posclass", "negclass"}


def test_voted_output_keeps_candidates_with_at_least_two_sigma_of_noisy_votes(
    tmp_path: Path,
) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", private_rows(200))
    cfg = small_config(
        data, tmp_path / "v", 4.0, pe={"iterations": 2, "samples": 10, "output": "voted"}
    )
    result = pipeline.run(
        cfg, show_progress=False, llm=FakeLLM(public_pool(30)), embedder=HashEmbedder(32)
    )
    sigma = max(e.sigma for e in result.ledger.events if e.kind == "vote_histogram")
    votes = [r["noisy_votes"] for r in result.samples]
    assert votes and min(votes) >= 2 * sigma - 1e-3  # rounded to 4 places in the corpus
    assert len({r["id"] for r in result.samples}) == len(votes)
    assert {r["iteration"] for r in result.samples} >= {0}


def test_output_policy_study_rederives_exactly_what_a_voted_run_releases(tmp_path: Path) -> None:
    """benchmarks/output_policy.py post-processes a finished run's stored votes: with the same
    noise seed, its `voted` corpus is the corpus a `pe.output=voted` run releases."""
    from benchmarks.output_policy import policies

    data = write_jsonl(tmp_path / "d.jsonl", private_rows(120))
    runs = {}
    for mode in ("selected", "voted"):
        cfg = small_config(
            data, tmp_path / mode, 4.0, pe={"iterations": 2, "relabel": True, "output": mode}
        )
        runs[mode] = pipeline.run(
            cfg, show_progress=False, llm=FakeLLM(public_pool(30)), embedder=HashEmbedder(32)
        )
    names = ["negclass", "posclass"]
    got = policies(runs["selected"].run_dir, names)
    released = [(r["text"], names.index(r["class"]), 1.0) for r in runs["selected"].samples]
    assert got["released"] == released
    voted = sorted((r["text"], names.index(r["class"]), 1.0) for r in runs["voted"].samples)
    assert voted and sorted(got["voted >= 2 sigma"]) == voted


def test_soft_output_puts_each_text_under_every_class_its_noisy_cells_vouch_for() -> None:
    from augpe.pe.output import Soft, Voted

    samples = [Sample(f"s{i}", f"text {i}", i % 2, 1, None, "m", "random") for i in range(3)]
    noisy = np.array([9.0, 4.0, 0.5, 7.0, 3.0, -2.0])  # (candidate, voter class) bins
    policy = Soft(least=3.5, n_classes=2, cross=True)
    cast = Voted(samples, noisy, np.array([0, 1, -1]))
    policy.observe(cast, cast, [])
    assert list(policy.cells) == ["s0", "s1"]  # the near-duplicate (-1) is not a candidate
    soft = policy.result()
    got = [(s.id, s.text, s.class_id, soft.votes[s.id]) for s in soft.output]
    assert got == [("s0", "text 0", 0, 9.0), ("s0~1", "text 0", 1, 4.0), ("s1", "text 1", 1, 7.0)]
    assert soft.weighted  # the noisy votes are the training weights
    # a per-class vote has one cell per candidate: its own class
    own = Soft(least=2.0, n_classes=2, cross=False)
    cast = Voted(samples[:2], np.array([5.0, 1.0]), np.array([0, 1]))
    own.observe(cast, cast, [])
    assert [(s.id, s.class_id) for s in own.result().output] == [("s0", 0)]


def test_soft_output_run_releases_weighted_rows_the_study_rederives(tmp_path: Path) -> None:
    """pe.output=soft: every row is a (text, class) cell with >= 2 sigma of noisy votes, its
    weight that count; benchmarks/output_policy.py re-derives the same corpus from the stored
    votes; and the evaluator reads the weights back."""
    from augpe.evaluate.corpus import load_run_corpus
    from benchmarks.output_policy import policies

    data = write_jsonl(tmp_path / "d.jsonl", private_rows(200))
    cfg = small_config(
        data,
        tmp_path / "s",
        4.0,
        pe={"iterations": 2, "samples": 10, "relabel": True, "output": "soft"},
    )
    result = pipeline.run(
        cfg, show_progress=False, llm=FakeLLM(public_pool(30)), embedder=HashEmbedder(32)
    )
    sigma = max(e.sigma for e in result.ledger.events if e.kind == "vote_histogram")
    rows = result.samples
    assert rows and len({r["id"] for r in rows}) == len(rows)
    assert all(r["weight"] == r["noisy_votes"] >= max(2 * sigma, 1.0) - 1e-3 for r in rows)
    names = ["negclass", "posclass"]
    study = policies(result.run_dir, names)["soft every iteration >= 2 sigma"]
    released = [(r["text"], names.index(r["class"]), r["weight"]) for r in rows]
    assert sorted(released) == sorted((t, c, round(w, 4)) for t, c, w in study)
    corpus = load_run_corpus(result.run_dir)
    assert corpus.weights == [r["weight"] for r in rows]


# ---- in-context examples ----------------------------------------------------------------------
def test_best_voted_keeps_each_classes_top_parents_best_first() -> None:
    samples = [Sample(f"s{i}", f"text {i}", i % 2, 1, None, "m", "rephrase") for i in range(6)]
    noisy = np.array([1.0, 9.0, 5.0, 2.0, 7.0, 8.0])
    got = best_voted(samples, noisy, parents=[0, 2, 4, 1, 3, 4], n=2)
    assert {c: [s.id for s in ss] for c, ss in got.items()} == {0: ["s4", "s2"], 1: ["s1", "s3"]}
    assert "s5" not in {s.id for ss in got.values() for s in ss}  # not a parent: never shown


def test_in_context_requests_show_the_classes_best_voted_texts_never_the_parent(
    tmp_path: Path,
) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", private_rows(80))
    cfg = small_config(data, tmp_path / "ic", 4.0, pe={"in_context": 2, "iterations": 3})
    spy = PromptSpy(public_pool(20))
    pipeline.run(cfg, show_progress=False, llm=spy, embedder=HashEmbedder(32))
    shown = [p for p in spy.prompts if p.startswith("Examples of texts labelled")]
    assert shown, "no variation request showed examples"
    state = tmp_path / "ic" / "state"
    synthetic = {
        " ".join(s["text"].split())
        for f in state.glob("population_*.json")
        for s in json.loads(f.read_text())["samples"]
    }
    for p in shown:
        head, _, request = p.partition("\n\n")
        examples = [ln[2:] for ln in head.splitlines()[1:]]
        assert 1 <= len(examples) <= 2
        assert all(e in synthetic for e in examples)  # synthetic texts only
        assert not any(e in request for e in examples)  # never the text being varied
    first = [p for p in spy.prompts if "Rephrase" in p or "Fill in" in p]
    assert first  # iteration 0's variations have nothing voted yet: plain requests


def test_an_in_context_header_without_examples_is_refused(tmp_path: Path) -> None:
    from augpe.errors import PromptError
    from augpe.pe.prompts import load_prompt_set, prompts_dir

    text = (prompts_dir() / "generic.yaml").read_text() + '\nin_context: "Some {label} texts:"\n'
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(PromptError, match=r"in_context.*\{examples\}"):
        load_prompt_set(tmp_path / "p.yaml")
