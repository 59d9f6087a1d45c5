"""Where the shipped data folders (`prompts/`, `configs/`) are.

In a checkout or an editable install they are the repository's folders; a wheel carries them
inside the package as `augpe/_prompts` and `augpe/_configs` (pyproject.toml maps them there).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
REPO = _PACKAGE.parent


def shipped_dir(name: str) -> Path:
    """`name` is "prompts" or "configs"."""
    installed = _PACKAGE / f"_{name}"
    return installed if installed.is_dir() else REPO / name


def in_checkout() -> bool:
    """True when running from the repository (not from an installed wheel)."""
    return not (_PACKAGE / "_configs").is_dir() and (REPO / "configs").is_dir()
