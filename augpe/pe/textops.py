"""Text utilities for the VARIATION API: masking, adaptive length, cleaning model output.

Pure functions. Anything random takes an explicit ``np.random.Generator`` so a run is reproducible
from its seed and a resumed run draws exactly what the original would have drawn.
"""

from __future__ import annotations

import math
import re

import numpy as np

__all__ = [
    "clean_generation",
    "count_words",
    "is_echo",
    "mask_probability",
    "mask_text",
    "max_tokens_for",
    "strip_label_echo",
    "strip_markup",
    "target_words",
    "trim_unfinished",
]

BLANK = "_"


def count_words(text: str) -> int:
    """Number of whitespace-separated tokens (the unit of every length target in Aug-PE)."""
    return len(text.split())


def mask_text(text: str, p: float, rng: np.random.Generator, blank: str = BLANK) -> str:
    """Replace each whitespace token independently by ``blank`` with probability ``p``.

    The whitespace between tokens is kept as it was, so the token count never changes and
    consecutive masked tokens stay separate blanks (``"_ _"``), which tells the model how many
    words are missing. One uniform draw is made per token, whatever ``p`` is.
    """
    if not 0.0 <= p <= 1.0 or math.isnan(p):
        raise ValueError(f"mask probability must be in [0, 1], got {p}")
    # re.split with a capturing group keeps separators at odd indices: [tok, ws, tok, ws, ...].
    parts = re.split(r"(\s+)", text)
    token_idx = [i for i in range(0, len(parts), 2) if parts[i]]
    draws = rng.random(len(token_idx))
    for i, u in zip(token_idx, draws):
        if u < p:
            parts[i] = blank
    return "".join(parts)


def mask_probability(schedule: list[float], iteration: int) -> float:
    """The fill-in-the-blanks probability for a 0-based ``iteration``.

    ``schedule[0]`` is used by the first variation round; after the end of the schedule its last
    value repeats, so a short schedule works for any number of iterations.
    """
    if not schedule:
        raise ValueError("mask schedule is empty")
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    p = float(schedule[min(iteration, len(schedule) - 1)])
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"mask probability must be in [0, 1], got {p}")
    return p


def target_words(parent_words: int, std: float, min_words: int, rng: np.random.Generator) -> int:
    """Adaptive length: ``max(min_words, parent_words + round(N(0, std)))``.

    Always makes exactly one normal draw (also for ``std == 0``), so the random stream does not
    depend on the setting.
    """
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    delta = round(float(rng.normal(0.0, std)))
    return max(int(min_words), int(parent_words) + delta)


def max_tokens_for(words: int, token_per_word: float, cap: int) -> int:
    """Token budget for a ``words``-word answer: ``min(ceil(words * ratio), cap)``, at least 8."""
    return max(8, min(math.ceil(words * token_per_word), int(cap)))


# ---------------------------------------------------------------------------------------------
# Cleaning model output
# ---------------------------------------------------------------------------------------------

# "Sure! Here is a rephrased version of the review:" and friends, up to the first colon.
_CHATTER_TO_COLON = re.compile(
    r"^(?:(?:sure|certainly|of course|okay|ok|absolutely|alright)\b[^\n:]{0,40}?"
    r"\b(?:here|below|the following|rephras\w*|paraphras\w*|version|text|answer)\b[^\n:]{0,120}"
    r"|(?:here is|here's|here are|below is)\b[^\n:]{0,100}?\b(?:version|text|review|abstract|"
    r"rephras\w*|paraphras\w*|rewrit\w*|answer|blanks?|paragraph|passage|result)\b[^\n:]{0,60})"
    r":[ \t]*\n?",
    re.IGNORECASE,
)
# "Here's a revised version." / "Here is my rewritten review!" as a whole first sentence.
_CHATTER_SENTENCE = re.compile(
    r"^(?:here(?:'s| is| are)|below is|this is)\s+[^\n.!?:]{0,60}?"
    r"\b(?:version|rewrite|rephrasing|paraphrase|revised|rewritten|rephrased|paraphrased)\b"
    r"[^\n.!?:]{0,60}[.!?:]+[ \t]*\n?",
    re.IGNORECASE,
)
# A bare interjection without a colon: "Sure! The food was ..." -> "The food was ...".
_INTERJECTION = re.compile(
    r"^(?:sure|certainly|of course|okay|absolutely|alright)\s*[!,.]+[ \t]*", re.IGNORECASE
)
# Field labels the model copies from the prompt: "Answer: ...", "Rephrased text: ...".
_LABEL_PREFIX = re.compile(
    r"^(?:answer|response|output|result|review|text|abstract|rephrased|paraphrased|"
    r"rewritten|filled(?:[- ]in)?|completed|new)"
    r"(?:[ \t]+(?:text|version|review|abstract|answer|paragraph|sentence))?[ \t]*:[ \t]*\n?",
    re.IGNORECASE,
)
_TRAILING_COUNT = re.compile(
    r"[ \t]*(?:"
    r"[\(\[][ \t]*(?:word count|words?|length)[ \t]*[:=]?[ \t]*~?\d+[ \t]*(?:words?)?[ \t]*[\)\]]"
    r"|[\(\[][ \t]*(?:approx\.?|approximately|about|around|~)?[ \t]*\d+[ \t]*words?"
    r"[^\)\]\n]{0,20}[\)\]]"
    r"|\n[ \t]*(?:word count|total words|words)[ \t]*:[ \t]*\d+[ \t]*"
    r")[ \t]*\.?[ \t]*$",
    re.IGNORECASE,
)
# Trailing sign-offs on their own line: "I hope this helps!", "Let me know if ...".
_TRAILING_CHATTER = re.compile(
    r"\n[ \t]*(?:i hope|hope this|let me know|feel free|note:|i have (?:rephrased|filled)|"
    r"this (?:rephrased|revised) version)[^\n]*$",
    re.IGNORECASE,
)
_REFUSAL = re.compile(
    r"^(?:i['’]?m sorry|i am sorry|sorry\b|i apologi[sz]e|as an ai\b|as a language model|"
    r"as an? (?:ai )?assistant|i['’]?m (?:just )?an ai|i am (?:just )?an ai|"
    r"(?:i['’]?m|i am) (?:unable|not able) to|"
    r"i (?:cannot|can['’]?t|can not|won['’]?t) "
    r"(?:fulfill|help|assist|comply|provide|complete|create|write|generate|do that|rephrase|fill))",
    re.IGNORECASE,
)
_QUOTE_PAIRS = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "`": "`"}
_HAS_WORD = re.compile(r"[^\W_]")  # a letter or digit


def _strip_quotes(text: str) -> str:
    while len(text) >= 2 and text[0] in _QUOTE_PAIRS and text[-1] == _QUOTE_PAIRS[text[0]]:
        text = text[1:-1].strip()
    # A generation cut by max_tokens keeps only its opening quote.
    if text and text[0] in _QUOTE_PAIRS and _QUOTE_PAIRS[text[0]] not in text[1:]:
        text = text[1:].strip()
    return text


def _strip_leading_meta(text: str) -> str:
    for _ in range(5):  # a few rounds: "Sure!\nHere is the review:\nReview: ..."
        before = text
        text = _CHATTER_TO_COLON.sub("", text, count=1).lstrip()
        text = _CHATTER_SENTENCE.sub("", text, count=1).lstrip()
        text = _INTERJECTION.sub("", text, count=1).lstrip()
        text = _LABEL_PREFIX.sub("", text, count=1).lstrip()
        text = _strip_quotes(text)
        if text == before:
            break
    return text


def _strip_trailing_meta(text: str) -> str:
    for _ in range(5):
        before = text
        text = _TRAILING_COUNT.sub("", text).rstrip()
        text = _TRAILING_CHATTER.sub("", text).rstrip()
        text = _strip_quotes(text)
        if text == before:
            break
    return text


def clean_generation(text: str) -> str | None:
    """Strip the wrapping a chat model puts around the text it was asked for.

    Removes leading meta-chatter ("Sure! Here is ...:", "Rephrased text:", "Answer:"), trailing
    word-count artefacts ("(50 words)", "(Word count: 50)") and sign-offs, wrapping quotes,
    code fences and markdown bold markers, and collapses runs of spaces and blank lines.
    Returns None for output that must count as a failed generation: empty, fewer than three
    words, nothing but blanks, or a refusal. The caller retries or drops it; it never
    substitutes the prompt or the parent.
    """
    if not text:
        return None
    out = text.replace("\r\n", "\n").replace("\r", "\n")
    out = re.sub(r"```[a-zA-Z]*", "", out)
    out = out.replace("**", "")
    out = re.sub(r"[ \t\f\v\u00a0]+", " ", out)
    out = re.sub(r" ?\n ?", "\n", out)
    out = re.sub(r"\n{2,}", "\n", out)
    out = _strip_quotes(out.strip())
    out = _strip_leading_meta(out)
    out = _strip_trailing_meta(out)
    out = out.strip()
    if not out or _REFUSAL.match(out):
        return None
    if sum(1 for tok in out.split() if _HAS_WORD.search(tok)) < 3:
        return None
    return out


_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s|$)")
_ENDS_WELL = re.compile(r"[.!?][\"'”’)\]]*\s*$")


def trim_unfinished(text: str, min_keep: float = 0.5) -> tuple[str, bool]:
    """(text cut after its last complete sentence, whether it was cut).

    A generation stopped by max_tokens ends mid-sentence ("... and the price was"). Cut it after
    the last sentence end, unless that would keep less than `min_keep` of its words (one long
    unfinished sentence is kept as it is: some text beats none).
    """
    if _ENDS_WELL.search(text):
        return text, False
    ends = list(_SENTENCE_END.finditer(text))
    if not ends:
        return text, False
    kept = text[: ends[-1].end()].rstrip()
    if count_words(kept) < max(3, min_keep * count_words(text)):
        return text, False
    return kept, True


_MARKUP = re.compile(
    r"</?(?P<tag>a|b|i|u|s|em|strong|small|sup|sub|span|code|div|p|br|hr|h[1-6]|ul|ol|li|blockquote)"
    r"(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)
_INLINE_TAGS = {"a", "b", "i", "u", "s", "em", "strong", "small", "sup", "sub", "span", "code"}


def strip_markup(text: str) -> tuple[str, bool]:
    """(text without HTML tags, whether any were removed).

    A base model pretrained on web pages sprinkles `<i>`, `<b>` or `<br />` into its prose. Only
    well-formed tags of common HTML elements are cut (an inline one to nothing, a block one such
    as a line break to a space), so a "<" in running text, as in "x < 5", stays.
    """

    def cut(m: re.Match[str]) -> str:
        return "" if m.group("tag").lower() in _INLINE_TAGS else " "

    out, n = _MARKUP.subn(cut, text)
    if not n:
        return text, False
    out = re.sub(r"[ \t]{2,}", " ", out)
    out = re.sub(r" +([.,!?;:])", r"\1", out)
    return out.strip(), True


_LABEL_WORDS = r"(?:review|rephras\w*|rewrit\w*|version|rating|text|paraphras\w*|stars?)"


def strip_label_echo(text: str, label: str) -> tuple[str, bool]:
    """(text without the class description the prompt gave, whether any was removed).

    Small models echo it: a first line "Positive, 5 stars product review rephrased in a casual
    tone:" or a quoted '"positive, 5 stars"' inside the text. The description is prompt material,
    not part of a sample: leaving it in makes every sample of a class share a tell-tale phrase.
    """
    if not label.strip():
        return text, False
    lab = re.escape(label.strip())
    out = text
    head = re.match(
        rf"\s*[\"'“(]?{lab}[\"'”)]?[^\n.:!?]{{0,80}}{_LABEL_WORDS}[^\n.:!?]{{0,60}}[:.!\n]",
        out,
        re.IGNORECASE,
    )
    if head and count_words(out[head.end() :]) >= 3:
        out = out[head.end() :].lstrip()
    out = re.sub(rf"\s*[\"“‘'(\[]\s*{lab}\s*[\"”’')\]]", "", out, flags=re.IGNORECASE)
    out = re.sub(r"[ \t]{2,}", " ", out).strip()
    return out, out != text


def strip_instruction_echo(text: str, instruction: str) -> str:
    """Drop a leading copy of the request's instruction, which small models often write first:
    "Rewrite this positive, 5 stars product review in a friendly tone.\nI had a blast ..." or
    "Rating: positive, 5 stars. I'm loving ...". The echo is recognised by the instruction's first
    two words; it ends at the first line break (within 250 characters) or else at the first
    sentence end or colon after those words."""
    head = [w.lower() for w in instruction.split()[:2]]
    m = re.match(r"\s*(\S+)\s+(\S+)", text)
    if len(head) < 2 or m is None or [m.group(1).lower(), m.group(2).lower()] != head:
        return text
    newline = text.find("\n", m.end())
    if 0 <= newline <= 250:
        return text[newline + 1 :]
    end = re.compile(r"[.:!?](\s|$)").search(text, m.end())
    return text[end.end() :] if end else text


def _norm(text: str) -> str:
    return "".join(text.lower().split())


def is_echo(generated: str, source: str) -> bool:
    """True if ``generated`` is ``source`` again, ignoring case and whitespace.

    Call it with the parent text and with the masked input: a variation that copies either is a
    failed generation, never a new sample.
    """
    return _norm(generated) == _norm(source)
