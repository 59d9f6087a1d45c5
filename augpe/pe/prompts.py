"""Prompt sets: the RANDOM and VARIATION API prompts, kept as data in ``prompts/*.yaml``.

A prompt set is validated completely when it is loaded (every key, every template placeholder),
so a typo in a YAML file fails at the door with the file named, not halfway through a paid run.

Privacy: a prompt is built only from synthetic text, the class description and the public
template data in the prompt file. Nothing here ever sees a private record.

Rendering a prompt from a set is `augpe.pe.render`.
"""

from __future__ import annotations

import dataclasses
import os
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from augpe.errors import PromptError

__all__ = [
    "FewShotExample",
    "FillBlanksPrompts",
    "Message",
    "PromptSet",
    "RandomPrompts",
    "RephrasePrompts",
    "available_prompt_sets",
    "load_prompt_set",
    "prompts_dir",
    "template_fields",
]

Message = dict[str, str]
"""One chat turn, OpenAI shape: ``{"role": "system" | "user" | "assistant", "content": "..."}``."""

# Placeholders each kind of template may use, besides the keys of random.replacements.
BASE_FIELDS: dict[str, frozenset[str]] = {
    "random": frozenset({"label", "words"}),
    "rephrase": frozenset({"label", "words", "text", "style"}),
    "fill_blanks": frozenset({"label", "words", "masked"}),
    "in_context": frozenset({"label", "examples"}),
}
# A template of this kind that lacks this placeholder cannot do its job.
_REQUIRED_FIELD = {"rephrase": "text", "fill_blanks": "masked", "in_context": "examples"}
_RESERVED = frozenset({"label", "words", "text", "masked"})
_TOP_KEYS = frozenset(
    {"name", "description", "system", "random", "rephrase", "fill_blanks", "in_context", "keywords"}
    | {"answer_prefix", "stop"}
)
KEYWORD_SLOTS = ("keyword", "keyword2")
"""Placeholders that DP keywords fill (privacy.keywords); the set lists public fallbacks for them."""
DEFAULT_IN_CONTEXT = 'Examples of texts labelled "{label}":\n{examples}\n\n'
"""How in-context examples (`pe.in_context`) open a VARIATION request, unless the set says."""


@dataclass(frozen=True)
class FewShotExample:
    """A worked fill-in-the-blanks example; ``label`` defaults to the request's label."""

    masked: str
    answer: str
    label: str | None = None


@dataclass(frozen=True)
class RandomPrompts:
    templates: tuple[str, ...]
    replacements: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class RephrasePrompts:
    template: str
    styles: tuple[str, ...]


@dataclass(frozen=True)
class FillBlanksPrompts:
    template: str
    examples: tuple[FewShotExample, ...]


@dataclass(frozen=True)
class PromptSet:
    """One prompt file, validated. ``source`` is the file it came from (for the run record)."""

    name: str
    system: str
    random: RandomPrompts
    rephrase: RephrasePrompts
    fill_blanks: FillBlanksPrompts
    source: str = ""
    description: str = ""
    in_context: str = DEFAULT_IN_CONTEXT  # {label}, {examples}: the best-voted texts, one per line
    keywords: bool = False  # DP keywords by default (privacy.keywords: auto) for this set
    answer_prefix: str = ""  # the answer's first characters, written for the model (base models)
    stop: tuple[str, ...] = ()  # where a generated text ends (base models run on)

    @property
    def has_keyword_slot(self) -> bool:
        """Whether a RANDOM template has a {keyword} slot (where DP keywords go)."""
        return any(set(KEYWORD_SLOTS) & set(template_fields(t)) for t in self.random.templates)


# ---------------------------------------------------------------------------------------------
# Locating and loading
# ---------------------------------------------------------------------------------------------


def prompts_dir() -> Path:
    """The shipped prompt sets: the repo's ``prompts/`` (``augpe/_prompts`` in a wheel)."""
    from augpe.resources import shipped_dir

    return shipped_dir("prompts")


def available_prompt_sets() -> list[str]:
    """Names of the shipped prompt sets (file stems under ``prompts_dir()``)."""
    d = prompts_dir()
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.yaml"))


def _resolve(name_or_path: str | os.PathLike[str]) -> Path:
    s = os.fspath(name_or_path)
    is_path = (
        os.sep in s
        or "/" in s
        or (os.altsep is not None and os.altsep in s)
        or s.endswith((".yaml", ".yml"))
    )
    if not s:
        raise PromptError(
            "prompt set name is empty; available: " + ", ".join(available_prompt_sets())
        )
    path = Path(s) if is_path else prompts_dir() / f"{s}.yaml"
    if not path.is_file():
        avail = ", ".join(available_prompt_sets()) or "(none)"
        what = f"prompt file {path}" if is_path else f"prompt set '{s}' ({path})"
        raise PromptError(f"{what} not found; available prompt sets: {avail}")
    return path


def load_prompt_set(name_or_path: str | os.PathLike[str]) -> PromptSet:
    """Load and validate a prompt set: a bare name (``"reviews"``) or a path to a YAML file."""
    path = _resolve(name_or_path)
    try:
        raw_text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise PromptError(f"prompt file {path} is not valid UTF-8: {err}") from None
    except OSError as err:
        raise PromptError(f"cannot read prompt file {path}: {err}") from None
    try:
        raw = yaml.safe_load(raw_text)
    except yaml.YAMLError as err:
        raise PromptError(f"YAML syntax error in prompt file {path}: {err}") from None
    return _parse(raw, path)


class _Reader:
    """Typed access to the raw YAML with errors that name the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, msg: str) -> PromptError:
        return PromptError(f"prompt file {self.path}: {msg}")

    def section(self, raw: Mapping[str, Any], key: str, allowed: set[str]) -> Mapping[str, Any]:
        if key not in raw or raw[key] is None:
            raise self.fail(f"missing required key '{key}'")
        val = raw[key]
        if not isinstance(val, Mapping):
            raise self.fail(f"'{key}' must be a mapping")
        unknown = sorted(set(map(str, val)) - allowed)
        if unknown:
            raise self.fail(f"unknown key(s) in '{key}': {', '.join(unknown)}")
        return val

    def string(self, raw: Mapping[str, Any], key: str, where: str) -> str:
        if key not in raw or raw[key] is None:
            raise self.fail(f"missing required key '{where}'")
        val = raw[key]
        if not isinstance(val, str):
            raise self.fail(f"'{where}' must be a string, got {type(val).__name__}")
        if not val.strip():
            raise self.fail(f"'{where}' is empty")
        return val

    def strings(self, raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        if key not in raw or raw[key] is None:
            raise self.fail(f"missing required key '{where}'")
        val = raw[key]
        if not isinstance(val, list):
            raise self.fail(f"'{where}' must be a list of strings")
        if not val:
            raise self.fail(f"'{where}' is an empty list")
        out = []
        for i, item in enumerate(val):
            if not isinstance(item, str) or not item.strip():
                raise self.fail(f"'{where}[{i}]' must be a non-empty string, got {item!r}")
            out.append(item)
        return tuple(out)


def template_fields(template: str) -> list[str]:
    """Placeholder names in a ``str.format`` template; ValueError for unbalanced braces."""
    fields = []
    for _literal, field, spec, conv in string.Formatter().parse(template):
        if field is None:
            continue
        if spec or conv:
            raise ValueError(
                f"placeholder {{{field}}} has a format spec or conversion; use plain {{name}}"
            )
        fields.append(field)
    return fields


def _check_template(
    r: _Reader, template: str, where: str, kind: str, replacement_keys: frozenset[str]
) -> None:
    try:
        fields = template_fields(template)
    except ValueError as err:
        raise r.fail(
            f"template '{where}' is malformed ({err}); write a literal brace as {{{{ or }}}}"
        ) from None
    allowed = BASE_FIELDS[kind] | replacement_keys
    for f in fields:
        if f not in allowed:
            shown = "{" + f + "}" if f else "{}"
            raise r.fail(
                f"template '{where}' has an unknown placeholder {shown}; "
                f"allowed: {', '.join('{' + a + '}' for a in sorted(allowed))}"
            )
    need = _REQUIRED_FIELD.get(kind)
    if need and need not in fields:
        raise r.fail(f"template '{where}' must contain the placeholder {{{need}}}")


def _in_context(r: _Reader, raw: Mapping[str, Any]) -> str:
    """The optional in-context header: {examples} (one per line) and, if it likes, {label}."""
    if raw.get("in_context") is None:
        return DEFAULT_IN_CONTEXT
    header = r.string(raw, "in_context", "in_context")
    _check_template(r, header, "in_context", "in_context", frozenset())
    return header


def _parse(raw: Any, path: Path) -> PromptSet:
    r = _Reader(path)
    if not isinstance(raw, Mapping):
        raise r.fail(
            "the top level must be a mapping with keys system, random, rephrase, fill_blanks"
        )
    unknown = sorted(set(map(str, raw)) - _TOP_KEYS)
    if unknown:
        raise r.fail(f"unknown top-level key(s): {', '.join(unknown)}")

    name = raw.get("name") or path.stem
    if not isinstance(name, str):
        raise r.fail("'name' must be a string")
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise r.fail("'description' must be a string")
    system = r.string(raw, "system", "system")

    rnd = r.section(raw, "random", {"templates", "replacements"})
    templates = r.strings(rnd, "templates", "random.templates")
    reps_raw = rnd.get("replacements") or {}
    if not isinstance(reps_raw, Mapping):
        raise r.fail("'random.replacements' must be a mapping of placeholder -> list of strings")
    replacements: dict[str, tuple[str, ...]] = {}
    for key in reps_raw:
        k = str(key)
        if not k.isidentifier():
            raise r.fail(f"'random.replacements.{k}' is not a valid placeholder name")
        if k in _RESERVED:
            raise r.fail(f"'random.replacements.{k}' is reserved (filled by augpe itself)")
        replacements[k] = r.strings(reps_raw, key, f"random.replacements.{k}")
    rep_keys = frozenset(replacements)
    for i, t in enumerate(templates):
        _check_template(r, t, f"random.templates[{i}]", "random", rep_keys)

    reph = r.section(raw, "rephrase", {"template", "styles"})
    reph_t = r.string(reph, "template", "rephrase.template")
    _check_template(r, reph_t, "rephrase.template", "rephrase", rep_keys)
    styles = r.strings(reph, "styles", "rephrase.styles")

    fb = r.section(raw, "fill_blanks", {"template", "examples"})
    fb_t = r.string(fb, "template", "fill_blanks.template")
    _check_template(r, fb_t, "fill_blanks.template", "fill_blanks", rep_keys)
    ex_raw = fb.get("examples")
    if ex_raw is None:
        ex_raw = []
    if not isinstance(ex_raw, list):
        raise r.fail("'fill_blanks.examples' must be a list of {masked, answer} mappings")
    examples = []
    for i, ex in enumerate(ex_raw):
        where = f"fill_blanks.examples[{i}]"
        if not isinstance(ex, Mapping):
            raise r.fail(
                f"'{where}' must be a mapping with keys masked, answer (and optional label)"
            )
        extra = sorted(set(map(str, ex)) - {"masked", "answer", "label"})
        if extra:
            raise r.fail(f"unknown key(s) in '{where}': {', '.join(extra)}")
        label = ex.get("label")
        if label is not None and not isinstance(label, str):
            raise r.fail(f"'{where}.label' must be a string")
        examples.append(
            FewShotExample(
                masked=r.string(ex, "masked", f"{where}.masked"),
                answer=r.string(ex, "answer", f"{where}.answer"),
                label=label,
            )
        )

    ps = _with_keywords(
        r,
        raw,
        PromptSet(
            in_context=_in_context(r, raw),
            name=name,
            system=system.strip(),
            random=RandomPrompts(templates=templates, replacements=replacements),
            rephrase=RephrasePrompts(template=reph_t, styles=styles),
            fill_blanks=FillBlanksPrompts(template=fb_t, examples=tuple(examples)),
            source=str(path),
            description=description,
        ),
    )
    return dataclasses.replace(ps, **_completion_keys(r, raw))


def _with_keywords(r: _Reader, raw: Mapping[str, Any], ps: PromptSet) -> PromptSet:
    """`ps` with the set's `keywords` flag (DP keywords under privacy.keywords: auto)."""
    on = raw.get("keywords", False)
    if not isinstance(on, bool):
        raise r.fail("'keywords' must be true or false")
    if on and not ps.has_keyword_slot:
        raise r.fail("'keywords: true' needs a {keyword} slot in a random template")
    return dataclasses.replace(ps, keywords=on)


def _completion_keys(r: _Reader, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The set's `answer_prefix` and `stop` (for base models, which continue text: the prefix
    starts the answer for them, the stops end it)."""
    prefix = raw.get("answer_prefix", "")
    if not isinstance(prefix, str):
        raise r.fail("'answer_prefix' must be a string")
    stop = raw.get("stop") or []
    if not isinstance(stop, list) or not all(isinstance(x, str) and x for x in stop):
        raise r.fail("'stop' must be a list of non-empty strings, e.g. [\"\\n\\n\"]")
    if len(stop) > 4:
        raise r.fail(f"'stop' lists {len(stop)} strings; OpenAI-compatible servers take at most 4")
    return {"answer_prefix": prefix, "stop": tuple(stop)}
