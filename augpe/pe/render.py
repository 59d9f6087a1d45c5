"""Rendering prompts from a prompt set (`augpe.pe.prompts`), one request at a time.

Rendering keeps the fixed part of a prompt (system message, few-shot turns) identical across
requests and puts the per-request part last, so backends with prefix caching reuse it. A prompt
is built only from synthetic text, the class description and the public prompt file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from augpe.pe.prompts import BASE_FIELDS, Message, PromptSet, template_fields
from augpe.pe.textops import count_words

__all__ = ["last_user_turn", "render_fill_blanks", "render_random", "render_rephrase"]


def _pick(items: Sequence[str], rng: np.random.Generator) -> str:
    return items[int(rng.integers(len(items)))]


def _draw_replacements(
    ps: PromptSet,
    template: str,
    kind: str,
    rng: np.random.Generator,
    overrides: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, str]:
    """One value per replacement placeholder the template uses, in order of first use.

    A placeholder the kind fills itself (``{style}`` in rephrase) is not drawn from replacements.
    `overrides` replaces a placeholder's list (e.g. {keyword}: a class's DP keywords) when the
    replacement list given is not empty; one uniform draw either way.
    """
    drawn: dict[str, str] = {}
    for f in template_fields(template):
        if f in ps.random.replacements and f not in drawn and f not in BASE_FIELDS[kind]:
            values = (overrides or {}).get(f) or ps.random.replacements[f]
            drawn[f] = _pick(values, rng)
    return drawn


def _with_examples(ps: PromptSet, label: str, examples: Sequence[str], user: str) -> str:
    """`user` after the prompt set's in-context header listing `examples` (none: unchanged)."""
    if not examples:
        return user
    listed = "\n".join(f"- {' '.join(e.split())}" for e in examples)
    return ps.in_context.format(label=label, examples=listed) + user


def _messages(ps: PromptSet, turns: list[tuple[str, str]], user: str) -> list[Message]:
    """The system message, few-shot turns, the request, and the set's `answer_prefix` (if any)
    as an unfinished assistant turn: the start of the answer a base model continues."""
    msgs: list[Message] = [{"role": "system", "content": ps.system}]
    for u, a in turns:
        msgs.append({"role": "user", "content": u})
        msgs.append({"role": "assistant", "content": a})
    msgs.append({"role": "user", "content": user})
    if ps.answer_prefix:
        msgs.append({"role": "assistant", "content": ps.answer_prefix})
    return msgs


def last_user_turn(messages: Sequence[Message]) -> str:
    """The request itself: the last user turn (an `answer_prefix` turn may follow it)."""
    return next(m["content"] for m in reversed(messages) if m["role"] == "user")


def _check_words(words: int) -> int:
    if int(words) < 1:
        raise ValueError(f"words must be >= 1, got {words}")
    return int(words)


def render_random(
    ps: PromptSet,
    label: str,
    words: int,
    rng: np.random.Generator,
    overrides: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[Message], dict[str, str]]:
    """A RANDOM API request: one template and one value per placeholder, drawn from ``rng``.

    Returns the messages and the drawn replacement values (keyed by placeholder), for the record.
    """
    template = _pick(ps.random.templates, rng)
    drawn = _draw_replacements(ps, template, "random", rng, overrides)
    user = template.format(label=label, words=_check_words(words), **drawn)
    return _messages(ps, [], user.strip()), drawn


def render_rephrase(
    ps: PromptSet,
    label: str,
    text: str,
    words: int,
    rng: np.random.Generator,
    overrides: Mapping[str, Sequence[str]] | None = None,
    examples: Sequence[str] = (),
) -> list[Message]:
    """A VARIATION API rephrase request for the synthetic ``text``; one style drawn per request
    (and one value per replacement placeholder the template uses, as in `render_random`).
    `examples`: synthetic texts of the class shown before the request (`pe.in_context`)."""
    style = _pick(ps.rephrase.styles, rng)
    drawn = _draw_replacements(ps, ps.rephrase.template, "rephrase", rng, overrides)
    user = ps.rephrase.template.format(
        label=label, text=text.strip(), words=_check_words(words), style=style, **drawn
    )
    return _messages(ps, [], _with_examples(ps, label, examples, user.strip()))


def render_fill_blanks(
    ps: PromptSet,
    label: str,
    masked: str,
    words: int,
    rng: np.random.Generator,
    overrides: Mapping[str, Sequence[str]] | None = None,
    examples: Sequence[str] = (),
) -> list[Message]:
    """A VARIATION API fill-in-the-blanks request, with the few-shot examples as earlier turns.

    The examples come in file order (a stable prefix for caching); ``rng`` only draws the
    replacement placeholders the template may use.
    """
    template = ps.fill_blanks.template
    turns = []
    for ex in ps.fill_blanks.examples:
        ex_drawn = {
            f: ps.random.replacements[f][0]
            for f in template_fields(template)
            if f in ps.random.replacements
        }
        ex_user = template.format(
            label=ex.label if ex.label is not None else label,
            masked=ex.masked.strip(),
            words=count_words(ex.answer),
            **ex_drawn,
        )
        turns.append((ex_user.strip(), ex.answer.strip()))
    drawn = _draw_replacements(ps, template, "fill_blanks", rng, overrides)
    user = template.format(label=label, masked=masked.strip(), words=_check_words(words), **drawn)
    return _messages(ps, turns, _with_examples(ps, label, examples, user.strip()))
