"""The configuration reference, generated from the models: `augpe run --help` and docs/config.md.

    python -m augpe.config.reference > docs/config.md

A test checks that docs/config.md is current and that every setting has a description.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from augpe.config import BACKEND_CONFIGS, Config, GenerationBase
from augpe.config.generation import MIXTURE_MEMBERS

__all__ = ["reference_markdown", "reference_rows", "reference_text"]


def _default(f: Any) -> str:
    if f.is_required():
        return "(required)"
    value = f.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section)"
    return json.dumps(value, default=str)


def _walk(model: type[BaseModel], prefix: str, skip: set[str] = frozenset()) -> list[tuple]:  # type: ignore[assignment]
    rows: list[tuple[str, str, str]] = []
    for name, f in model.model_fields.items():
        if name in skip:
            continue
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.extend(_walk(ann, f"{prefix}{name}."))
        else:
            rows.append((f"{prefix}{name}", _default(f), f.description or ""))
    return rows


def reference_rows() -> list[tuple[str, str, str, str]]:
    """(section, setting, default, description) of every setting; the generation section lists
    the shared settings, then each backend's own."""
    rows: list[tuple[str, str, str, str]] = []
    for section, f in Config.model_fields.items():
        if section == "generation":
            rows += [("generation", *r) for r in _walk(GenerationBase, "generation.")]
            member = MIXTURE_MEMBERS["embedded"].model_fields
            rows.append(
                (
                    "generation",
                    "generation.mixture[].weight",
                    "(required)",
                    member["weight"].description or "",
                )
            )
            for backend, model in BACKEND_CONFIGS.items():
                own = set(model.model_fields) - set(GenerationBase.model_fields)
                shared = set(GenerationBase.model_fields)
                rows += [
                    (f"generation (backend: {backend})", *r)
                    for r in _walk(model, "generation.", skip=shared)
                    if r[0].split(".", 1)[1] in own
                ]
        elif isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
            rows += [(section, *r) for r in _walk(f.annotation, f"{section}.")]
        else:
            rows.append(("(top level)", section, _default(f), f.description or ""))
    return rows


def reference_text() -> str:
    """The settings as plain lines, for `augpe run --help`."""
    lines = ["config settings (YAML sections; override any with --set section.key=value):"]
    last = None
    for section, name, default, desc in reference_rows():
        if section != last:
            lines.append(f" {section}:")
            last = section
        lines.append(f"  {name} = {default}" + (f" - {desc}" if desc else ""))
    return "\n".join(lines)


def reference_markdown() -> str:
    """docs/config.md."""
    out = [
        "# Configuration reference",
        "",
        "Generated from the config models (`python -m augpe.config.reference > docs/config.md`);",
        "a test keeps it current. Every setting can be overridden on the command line with",
        "`--set section.key=value`. The `generation` section takes the shared settings and those",
        "of its `backend`; a setting of another backend is an error.",
    ]
    last = None
    for section, name, default, desc in reference_rows():
        if section != last:
            out += ["", f"## {section}", "", "| setting | default | meaning |", "|---|---|---|"]
            last = section
        cell = desc.replace("|", "\\|")
        out.append(f"| `{name}` | `{default}` | {cell} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
