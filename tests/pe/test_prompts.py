"""Prompt sets (augpe.pe.prompts) and the text utilities of the VARIATION API (augpe.pe.textops)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from augpe.errors import PromptError
from augpe.llm.chat import messages_to_prompt
from augpe.pe.prompts import (
    PromptSet,
    available_prompt_sets,
    load_prompt_set,
    prompts_dir,
    template_fields,
)
from augpe.pe.render import last_user_turn, render_fill_blanks, render_random, render_rephrase
from augpe.pe.textops import (
    clean_generation,
    count_words,
    is_echo,
    mask_probability,
    mask_text,
    max_tokens_for,
    strip_instruction_echo,
    target_words,
)

SHIPPED = ["generic", "reviews", "yelp", "openreview", "pubmed"]  # the chat sets
EVERY_SET = [
    *SHIPPED,
    "generic_v2",
    "generic_base",
    "generic_base_keywords",
    "amazon_food",
    "amazon_food_keywords",
]
LABEL = "LABEL-XYZ"
TEXT = "The noodles were warm and the broth was rich with ginger and garlic."


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _no_placeholder_left(msgs: list[dict[str, str]]) -> None:
    for m in msgs:
        assert set(m) == {"role", "content"}
        assert m["content"].strip()
        assert "{" not in m["content"] and "}" not in m["content"], m["content"]


# ---------------------------------------------------------------------------------------------
# Shipped prompt sets
# ---------------------------------------------------------------------------------------------


def test_all_shipped_prompt_sets_are_found_in_prompts_dir() -> None:
    assert (prompts_dir() / "generic.yaml").is_file()
    assert set(EVERY_SET) <= set(available_prompt_sets())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_set_loads_with_enough_variety(name: str) -> None:
    ps = load_prompt_set(name)
    assert isinstance(ps, PromptSet)
    assert ps.name == name
    assert "Reply with the text only." in ps.system
    assert len(ps.rephrase.styles) >= 10
    assert len(ps.random.templates) >= 2
    assert ps.fill_blanks.examples
    # Lists drawn per request are long enough to give a diverse initial population.
    sizes = {k: len(v) for k, v in ps.random.replacements.items()}
    combos = sum(
        int(np.prod([sizes[f] for f in set(template_fields(t)) if f in sizes]))
        for t in ps.random.templates
    )
    assert combos >= 20_000, (combos, sizes)
    assert max(sizes.values()) >= 24, sizes
    persona = [k for k in sizes if "persona" in k]
    assert persona and sizes[persona[0]] >= 15
    # Every replacement list is used by at least one template (no dead data).
    used = {f for t in ps.random.templates for f in template_fields(t)}
    assert set(sizes) <= used


@pytest.mark.parametrize("name", EVERY_SET)
def test_shipped_set_renders_all_three_kinds(name: str) -> None:
    ps = load_prompt_set(name)
    # A set for base models (answer_prefix) ends each request with the answer's first characters.
    prefill = [{"role": "assistant", "content": ps.answer_prefix}] if ps.answer_prefix else []

    def request(msgs: list[dict[str, str]], n_turns: int) -> str:
        assert [m["role"] for m in msgs] == ["system"] + ["user", "assistant"] * n_turns + [
            "user"
        ] + [m["role"] for m in prefill]
        assert msgs[len(msgs) - len(prefill) :] == prefill
        return last_user_turn(msgs)

    def words_shown(template: str, user: str, n: int) -> bool:  # base models get no length
        return str(n) in user or "{words}" not in template

    for seed in range(20):  # enough seeds to hit every random template
        msgs, drawn = render_random(ps, LABEL, 47, _rng(seed))
        _no_placeholder_left(msgs)
        user = request(msgs, 0)
        assert msgs[0]["content"] == ps.system
        assert LABEL in user
        assert "47" in user or not all("{words}" in t for t in ps.random.templates)
        for key, value in drawn.items():
            assert value in ps.random.replacements[key]
            assert value in user

    msgs = render_rephrase(ps, LABEL, TEXT, 33, _rng(1))
    _no_placeholder_left(msgs)
    user = request(msgs, 0)
    assert LABEL in user and TEXT in user and words_shown(ps.rephrase.template, user, 33)
    assert any(style in user for style in ps.rephrase.styles)

    masked = mask_text(TEXT, 0.5, _rng(2))
    msgs = render_fill_blanks(ps, LABEL, masked, 29, _rng(3))
    _no_placeholder_left(msgs)
    n_ex = len(ps.fill_blanks.examples)
    user = request(msgs, n_ex)
    assert LABEL in user and masked in user and words_shown(ps.fill_blanks.template, user, 29)
    for i, ex in enumerate(ps.fill_blanks.examples):
        ex_user, ex_answer = msgs[1 + 2 * i]["content"], msgs[2 + 2 * i]["content"]
        assert ex.masked in ex_user
        assert ex_answer == ex.answer
        if "{words}" in ps.fill_blanks.template:
            assert f"{count_words(ex.answer)} words" in ex_user


@pytest.mark.parametrize("name", EVERY_SET)
def test_shipped_few_shot_examples_are_consistent_masks_of_their_answers(name: str) -> None:
    for ex in load_prompt_set(name).fill_blanks.examples:
        masked, answer = ex.masked.split(), ex.answer.split()
        assert len(masked) == len(answer)
        assert "_" in masked
        assert all(m == "_" or m == a for m, a in zip(masked, answer))


def test_same_rng_gives_same_prompts() -> None:
    ps = load_prompt_set("reviews")
    assert render_random(ps, LABEL, 50, _rng(5)) == render_random(ps, LABEL, 50, _rng(5))
    assert render_rephrase(ps, LABEL, TEXT, 50, _rng(5)) == render_rephrase(
        ps, LABEL, TEXT, 50, _rng(5)
    )
    assert render_fill_blanks(ps, LABEL, "a _ c", 50, _rng(5)) == render_fill_blanks(
        ps, LABEL, "a _ c", 50, _rng(5)
    )


def test_different_draws_give_diverse_prompts() -> None:
    ps = load_prompt_set("reviews")
    rng = _rng(0)
    randoms = {render_random(ps, LABEL, 50, rng)[0][-1]["content"] for _ in range(200)}
    rephrases = {render_rephrase(ps, LABEL, TEXT, 50, rng)[-1]["content"] for _ in range(200)}
    assert len(randoms) > 150
    assert len(rephrases) == len(ps.rephrase.styles)  # every style gets drawn
    seeds = {render_random(ps, LABEL, 50, _rng(s))[0][-1]["content"] for s in range(20)}
    assert len(seeds) > 15


def test_rendering_does_not_format_the_text_it_inserts() -> None:
    ps = load_prompt_set("generic")
    text = "A {label} and {words} and {} literally, plus }{ braces."
    user = render_rephrase(ps, "news", text, 20, _rng(0))[-1]["content"]
    assert text in user


def test_load_by_path_equals_load_by_name() -> None:
    by_name = load_prompt_set("yelp")
    by_path = load_prompt_set(str(prompts_dir() / "yelp.yaml"))
    assert by_name == by_path


# ---------------------------------------------------------------------------------------------
# Malformed prompt files
# ---------------------------------------------------------------------------------------------


def _valid_raw() -> dict:
    return {
        "name": "t",
        "system": "Write. Reply with the text only.",
        "random": {
            "templates": ["Write a {label} text of {words} words about {topic}."],
            "replacements": {"topic": ["cats", "dogs"]},
        },
        "rephrase": {
            "template": "Rephrase this {label} text {style} in {words} words:\n{text}",
            "styles": ["briefly"],
        },
        "fill_blanks": {
            "template": "Fill the blanks of this {label} text in {words} words:\n{masked}",
            "examples": [{"masked": "a _ c", "answer": "a b c"}],
        },
    }


def _write(tmp_path: Path, raw: dict | str | bytes, name: str = "bad.yaml") -> Path:
    p = tmp_path / name
    if isinstance(raw, bytes):
        p.write_bytes(raw)
    elif isinstance(raw, str):
        p.write_text(raw, encoding="utf-8")
    else:
        p.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return p


def _expect_error(path: Path, *fragments: str) -> str:
    with pytest.raises(PromptError) as info:
        load_prompt_set(str(path))
    msg = str(info.value)
    assert str(path) in msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


def test_valid_custom_file_loads(tmp_path: Path) -> None:
    ps = load_prompt_set(str(_write(tmp_path, _valid_raw(), "ok.yaml")))
    msgs, drawn = render_random(ps, "happy", 12, _rng(0))
    assert drawn["topic"] in {"cats", "dogs"}
    assert msgs[-1]["content"] == f"Write a happy text of 12 words about {drawn['topic']}."
    fb = render_fill_blanks(ps, "happy", "x _ z", 3, _rng(0))
    assert fb[1]["content"] == "Fill the blanks of this happy text in 3 words:\na _ c"


def test_unknown_name_lists_available_sets() -> None:
    with pytest.raises(PromptError) as info:
        load_prompt_set("no_such_set")
    msg = str(info.value)
    assert "no_such_set.yaml" in msg and "generic" in msg and "reviews" in msg


def test_missing_path_is_named(tmp_path: Path) -> None:
    _expect_error(tmp_path / "nope.yaml", "not found")


def test_yaml_syntax_error_is_reported(tmp_path: Path) -> None:
    _expect_error(_write(tmp_path, "system: [unclosed\nrandom: {"), "YAML")


def test_non_utf8_file_is_reported(tmp_path: Path) -> None:
    data = yaml.safe_dump(_valid_raw()).encode("utf-8").replace(b"Write.", b"Caf\xe9.")
    _expect_error(_write(tmp_path, data), "UTF-8")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    _expect_error(_write(tmp_path, "- a\n- b\n"), "mapping")


@pytest.mark.parametrize(
    "section, key",
    [
        (None, "system"),
        (None, "random"),
        (None, "rephrase"),
        (None, "fill_blanks"),
        ("random", "templates"),
        ("rephrase", "template"),
        ("rephrase", "styles"),
        ("fill_blanks", "template"),
    ],
)
def test_missing_required_key_is_named(tmp_path: Path, section: str | None, key: str) -> None:
    raw = _valid_raw()
    del (raw[section] if section else raw)[key]
    _expect_error(_write(tmp_path, raw), "missing required key", key)


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda r: r["random"].__setitem__("templates", []), "random.templates"),
        (lambda r: r["rephrase"].__setitem__("styles", []), "rephrase.styles"),
        (
            lambda r: r["random"]["replacements"].__setitem__("topic", []),
            "random.replacements.topic",
        ),
        (lambda r: r.__setitem__("system", "  "), "system"),
    ],
)
def test_empty_lists_and_strings_are_rejected(tmp_path: Path, mutate, fragment: str) -> None:
    raw = _valid_raw()
    mutate(raw)
    _expect_error(_write(tmp_path, raw), fragment)


@pytest.mark.parametrize(
    "where, template, fragment",
    [
        ("random", "Write about {colour}.", "{colour}"),
        ("random", "Write about {}.", "{}"),
        ("random", "Write a {label} text: {text}", "{text}"),  # {text} is for rephrase only
        ("random", "Write a {label text", "malformed"),
        ("random", "Write a label} text", "malformed"),
        ("random", "Write {words:d} words", "format spec"),
        ("rephrase", "Rephrase {text} as {persona}", "{persona}"),
        ("rephrase", "Rephrase it {style}", "{text}"),  # required placeholder
        ("fill_blanks", "Fill this in: {text}", "{text}"),
    ],
)
def test_bad_template_is_rejected_at_load(
    tmp_path: Path, where: str, template: str, fragment: str
) -> None:
    raw = _valid_raw()
    if where == "random":
        raw["random"]["templates"] = ["A {label} one.", template]
    else:
        raw[where]["template"] = template
    _expect_error(_write(tmp_path, raw), fragment)


def test_literal_braces_are_allowed(tmp_path: Path) -> None:
    raw = _valid_raw()
    raw["random"]["templates"] = ["Write JSON-free text {{not a field}} about {topic}."]
    ps = load_prompt_set(str(_write(tmp_path, raw)))
    user = render_random(ps, "x", 5, _rng(0))[0][-1]["content"]
    assert "{not a field}" in user


def test_reserved_replacement_key_is_rejected(tmp_path: Path) -> None:
    raw = _valid_raw()
    raw["random"]["replacements"]["text"] = ["leak"]
    _expect_error(_write(tmp_path, raw), "reserved")


def test_unknown_keys_are_rejected(tmp_path: Path) -> None:
    raw = _valid_raw()
    raw["rephrase"]["stlyes"] = ["typo"]
    _expect_error(_write(tmp_path, raw), "stlyes")


def test_a_set_for_base_models_prefills_the_answer_and_states_its_stops(tmp_path: Path) -> None:
    raw = _valid_raw()
    raw["answer_prefix"] = '"'
    raw["stop"] = ['"\n', "\n\n"]
    ps = load_prompt_set(str(_write(tmp_path, raw, "base.yaml")))
    assert ps.answer_prefix == '"' and ps.stop == ('"\n', "\n\n")
    msgs, _ = render_random(ps, LABEL, 20, _rng(0))
    assert msgs[-1] == {"role": "assistant", "content": '"'}
    prompt = messages_to_prompt(msgs)
    assert prompt.endswith(last_user_turn(msgs) + '\n\n"')  # the model continues the quote
    # a chat set: no prefill, the plain-text prompt ends after a blank line
    chat = load_prompt_set(str(_write(tmp_path, _valid_raw(), "chat.yaml")))
    msgs, _ = render_random(chat, LABEL, 20, _rng(0))
    assert msgs[-1]["role"] == "user" and messages_to_prompt(msgs).endswith("\n\n")
    assert chat.stop == () and chat.answer_prefix == ""


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("stop", "\n\n", "'stop' must be a list"),
        ("stop", ["ok", ""], "'stop' must be a list"),
        ("stop", ["a", "b", "c", "d", "e"], "at most 4"),
        ("answer_prefix", 3, "'answer_prefix' must be a string"),
    ],
)
def test_bad_completion_keys_are_refused_with_the_file_named(
    tmp_path: Path, key: str, value: object, fragment: str
) -> None:
    raw = _valid_raw()
    raw[key] = value
    msg = _expect_error(_write(tmp_path, raw), fragment)
    assert "bad.yaml" in msg


def test_bad_few_shot_example_is_rejected(tmp_path: Path) -> None:
    raw = _valid_raw()
    raw["fill_blanks"]["examples"] = [{"masked": "a _ c"}]
    _expect_error(_write(tmp_path, raw), "fill_blanks.examples[0].answer")


# ---------------------------------------------------------------------------------------------
# textops
# ---------------------------------------------------------------------------------------------


def test_count_words() -> None:
    assert count_words("  one two\nthree\tfour ") == 4
    assert count_words("") == 0


def test_mask_rate_matches_p_over_many_tokens() -> None:
    text = " ".join(f"w{i}" for i in range(20000))
    masked = mask_text(text, 0.5, _rng(0)).split()
    assert len(masked) == 20000
    frac = sum(t == "_" for t in masked) / len(masked)
    assert abs(frac - 0.5) < 0.02  # ~6 standard deviations
    frac2 = sum(t == "_" for t in mask_text(text, 0.2, _rng(1)).split()) / 20000
    assert abs(frac2 - 0.2) < 0.02


def test_mask_edge_cases_and_structure() -> None:
    text = "First line here.\nSecond   line,  with spaces\tand tabs."
    assert mask_text(text, 0.0, _rng(0)) == text
    all_blank = mask_text(text, 1.0, _rng(0))
    assert all_blank.split() == ["_"] * count_words(text)
    assert "_ _" in all_blank  # consecutive blanks stay separate
    assert re.sub(r"\S+", "", all_blank) == re.sub(r"\S+", "", text)  # whitespace kept
    half = mask_text(text, 0.5, _rng(3))
    assert count_words(half) == count_words(text)
    assert all(m in ("_", t) for m, t in zip(half.split(), text.split()))
    assert mask_text(text, 0.5, _rng(3)) == half
    assert mask_text("", 0.5, _rng(0)) == ""
    with pytest.raises(ValueError):
        mask_text(text, 1.5, _rng(0))


def test_mask_schedule_repeats_last_value() -> None:
    sched = [0.6, 0.55, 0.5]
    assert [mask_probability(sched, t) for t in range(6)] == [0.6, 0.55, 0.5, 0.5, 0.5, 0.5]
    assert mask_probability([0.3], 100) == 0.3
    with pytest.raises(ValueError):
        mask_probability([], 0)
    with pytest.raises(ValueError):
        mask_probability(sched, -1)


def test_target_words_is_floored() -> None:
    rng = _rng(0)
    assert all(target_words(5, 5.0, 25, rng) == 25 for _ in range(200))
    assert target_words(80, 0.0, 25, rng) == 80


def test_target_words_distribution() -> None:
    rng = _rng(1)
    draws = np.array([target_words(100, 5.0, 25, rng) for _ in range(5000)])
    assert abs(draws.mean() - 100) < 0.3
    assert 4.6 < draws.std() < 5.4
    assert draws.dtype.kind == "i"
    a = [target_words(100, 5.0, 25, _rng(9)) for _ in range(3)]
    assert len(set(a)) == 1  # same seed, same draw


def test_max_tokens_for_caps_and_floors() -> None:
    assert max_tokens_for(50, 1.6, 160) == 80
    assert max_tokens_for(11, 1.5, 100) == 17  # ceil(16.5)
    assert max_tokens_for(500, 1.6, 160) == 160
    assert max_tokens_for(1, 1.6, 160) == 8


@pytest.mark.parametrize(
    "raw, expected",
    [
        (
            'Sure! Here is a rephrased version of the review:\n"The pasta was cold and bland."',
            "The pasta was cold and bland.",
        ),
        (
            "Here's a rephrased version:\nThe staff were friendly and quick.",
            "The staff were friendly and quick.",
        ),
        (
            "Rephrased text: The staff were friendly and quick.",
            "The staff were friendly and quick.",
        ),
        ("Answer: The soup was salty but warm.", "The soup was salty but warm."),
        ("Review: Great value for the price.", "Great value for the price."),
        ("The room was clean and quiet. (50 words)", "The room was clean and quiet."),
        ("The room was clean and quiet.\n(Word count: 6)", "The room was clean and quiet."),
        ("The room was clean and quiet. (approximately 48 words)", "The room was clean and quiet."),
        ('  "The room was clean and quiet."  ', "The room was clean and quiet."),
        ("“Loved the ramen, will come back.”", "Loved the ramen, will come back."),
        ("The **best** tacos   in   town, honestly.", "The best tacos in town, honestly."),
        ("Line one is here.\n\n\nLine two is here.", "Line one is here.\nLine two is here."),
        ("Certainly! The hotel was spotless.\n\nI hope this helps!", "The hotel was spotless."),
        ("Results: mortality fell by 20% (n = 120).", "Results: mortality fell by 20% (n = 120)."),
        (
            "The food was great: tasty noodles and fast service.",
            "The food was great: tasty noodles and fast service.",
        ),
    ],
)
def test_clean_generation_strips_wrapping(raw: str, expected: str) -> None:
    assert clean_generation(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        '""',
        "Good food.",
        "_ _ _ _ _",
        "Answer: _ _ _ _",
        "I'm sorry, but I cannot help with that request.",
        "As an AI language model, I cannot write reviews.",
        "I cannot fulfill this request because it is unclear.",
        "Sure! Here is the rephrased text:",
    ],
)
def test_clean_generation_rejects_empty_or_refusals(raw: str) -> None:
    assert clean_generation(raw) is None


def test_is_echo() -> None:
    src = "The pasta was cold."
    assert is_echo("the  pasta was\nCOLD.", src)
    assert is_echo(" The pasta was cold. ", src)
    assert not is_echo("The pasta was warm.", src)
    masked = "The _ was _"
    assert is_echo("the _ was _", masked)
    assert not is_echo("The soup was hot.", masked)


# Outputs of SmolLM2-135M in the Amazon benchmark that started with the instruction.
REPHRASE_ASK = (
    "Rewrite this positive, 5 stars product review in a friendly tone. Keep the product and the "
    "opinion. About 45 words.\nReview: The gummy bears were soft and fruity."
)


@pytest.mark.parametrize(
    ("output", "instruction", "expected"),
    [
        (
            (
                "Rewrite this positive, 5 stars product review in a friendly tone.\nI had a blast "
                "eating those gummy bears! They're so sweet."
            ),
            REPHRASE_ASK,
            "I had a blast eating those gummy bears! They're so sweet.",
        ),
        (
            "Rewrite this product review with a positive note:\nThe product is a delightful find.",
            REPHRASE_ASK,
            "The product is a delightful find.",
        ),
        (
            (
                "Rewrite this positive, 5 stars product review in a calmer tone. With the added note, "
                "I want to share my honest opinion."
            ),
            REPHRASE_ASK,
            "With the added note, I want to share my honest opinion.",
        ),
        (
            "Rating: positive, 5 stars. I'm loving the jasmine rice, it cooks up fluffy.",
            "Rating: positive, 5 stars. Write your customer review of a bag of jasmine rice.",
            "I'm loving the jasmine rice, it cooks up fluffy.",
        ),
        (  # no echo: untouched
            "I had a blast eating those gummy bears. Rewrite this? Never.",
            REPHRASE_ASK,
            "I had a blast eating those gummy bears. Rewrite this? Never.",
        ),
    ],
)
def test_instruction_echo_is_stripped(output: str, instruction: str, expected: str) -> None:
    assert strip_instruction_echo(output, instruction) == expected


def test_an_output_that_is_only_the_instruction_fails() -> None:
    only = "Rewrite this positive, 5 stars product review in a friendly tone."
    assert clean_generation(strip_instruction_echo(only, REPHRASE_ASK)) is None


def test_the_apis_strip_an_echoed_instruction_before_keeping_a_sample() -> None:
    from augpe.config import generation_config
    from augpe.llm.base import Generation, Usage
    from augpe.pe.apis import TextAPIs

    class EchoingLLM:
        """Answers every request with its instruction's first line, then a review."""

        name = "echoing"

        def __init__(self) -> None:
            self.usage = Usage()

        def generate(self, requests, desc=""):
            out = []
            for r in requests:
                first = r.messages[-1]["content"].split("\n")[0]
                g = Generation(text=f"{first}\nThe tea {r.seed} was fresh and fragrant.")
                out.append(g)
            return out

        def close(self) -> None: ...

    apis = TextAPIs(
        EchoingLLM(), load_prompt_set("amazon_food"), generation_config(), ["positive"], seed=3
    )
    seeds = apis.random([0, 0, 0], iteration=0)
    kids = apis.vary(seeds, 2, iteration=1)
    assert len(seeds) == 3 and len(kids) == 6
    for s in seeds + kids:
        assert s.text.startswith("The tea "), s.text


def test_a_set_asks_for_dp_keywords_only_with_a_keyword_slot(tmp_path: Path) -> None:
    assert load_prompt_set("generic_v2").keywords is True
    assert load_prompt_set("generic").keywords is False
    assert load_prompt_set(str(_write(tmp_path, _valid_raw(), "ok.yaml"))).keywords is False
    _expect_error(_write(tmp_path, {**_valid_raw(), "keywords": True}), "{keyword} slot")
    _expect_error(_write(tmp_path, {**_valid_raw(), "keywords": "yes"}), "true or false")
    raw = _valid_raw()
    raw["random"]["templates"] = ["Write a {label} text of {words} words with {keyword}."]
    raw["random"]["replacements"] = {"keyword": ["a name"]}  # the public fallback
    ps = load_prompt_set(str(_write(tmp_path, {**raw, "keywords": True}, "kw.yaml")))
    assert ps.keywords is True and ps.has_keyword_slot
