"""Command-line options generated from a typed options dataclass (`augpe eval`'s `EvalOptions`).

Each dataclass field says how it reads on the command line in its `metadata`:

    flag      the option, e.g. "--encoder" (fields of nested settings may share one: --epochs)
    help      its help text
    negate    a boolean that is on by default: `--no-...` turns it off
    enable    an optional nested settings object (None when off): the flag turns it on
    to        converts the command-line value to the field's value (e.g. 3 -> seeds (0, 1, 2))
    type, choices, metavar, default
              as in argparse (`default` is the command-line value when it differs in kind
              from the field's default, e.g. --tier fast for tiers ("fast",))
    cli       False: not an option (with `why`, the reason, for the reference)

`add_arguments` declares them on a parser; `from_arguments` builds the dataclass back from the
parsed namespace. A test checks every field is an option or says why not.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

__all__ = ["add_arguments", "from_arguments", "option_fields"]


def _nested(f: dataclasses.Field[Any], hints: dict[str, Any]) -> type | None:
    """The dataclass a field holds (directly or as `X | None`), or None."""
    hint = hints[f.name]
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for a in args:
        if isinstance(a, type) and dataclasses.is_dataclass(a):
            return a
    return None


def option_fields(cls: type) -> list[tuple[dataclasses.Field[Any], type | None]]:
    """Every field of `cls`, and of the settings dataclasses it holds, with the nested class."""
    hints = typing.get_type_hints(cls)
    out: list[tuple[dataclasses.Field[Any], type | None]] = []
    for f in dataclasses.fields(cls):
        inner = _nested(f, hints)
        out.append((f, inner))
        if inner is not None:
            out.extend(option_fields(inner))
    return out


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _field_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def add_arguments(parser: argparse.ArgumentParser, cls: type, title: str | None = None) -> None:
    """Declare the options of `cls` (and its nested settings) on `parser`."""
    group = parser.add_argument_group(title) if title else parser
    seen: set[str] = set()
    for f, _ in option_fields(cls):
        meta = f.metadata
        flag = meta.get("flag")
        if not flag or flag in seen:
            continue
        seen.add(flag)
        kw: dict[str, Any] = {"dest": _dest(flag), "help": meta.get("help", "")}
        default = _field_default(f)
        if meta.get("negate") or meta.get("enable"):
            kw["action"] = "store_true"
        else:
            for key in ("type", "choices", "metavar"):
                if key in meta:
                    kw[key] = meta[key]
            if "type" not in kw and isinstance(default, (int, float, str)):
                kw["type"] = type(default)
            kw["default"] = meta.get("default", default)
            if kw["default"] is not None and "(default" not in kw["help"]:
                kw["help"] += f" (default: {kw['default']})"
        group.add_argument(flag, **kw)


def from_arguments(cls: type, args: argparse.Namespace) -> Any:
    """`cls` built from the parsed options (`add_arguments`); unexposed fields keep defaults."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        inner = _nested(f, hints)
        if inner is not None:
            if meta.get("enable") and not getattr(args, _dest(meta["flag"])):
                values[f.name] = None
            else:
                values[f.name] = from_arguments(inner, args)
            continue
        flag = meta.get("flag")
        if not flag:
            continue
        value = getattr(args, _dest(flag))
        if meta.get("negate"):
            value = not value
        elif "to" in meta:
            value = meta["to"](value)
        values[f.name] = value
    return cls(**values)
