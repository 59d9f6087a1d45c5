"""Errors a user can act on.

Every error raised for bad input names the file, row or setting at fault; the CLI prints the
message (no stack trace) and exits with a non-zero status.
"""

from __future__ import annotations


class AugpeError(Exception):
    """Base class: a problem the user can fix (bad input, bad setting, missing dependency)."""

    exit_code = 2


class ConfigError(AugpeError):
    """A setting is missing, malformed or out of range."""


class DataError(AugpeError):
    """The private dataset cannot be read or does not have the expected shape."""


class PromptError(AugpeError):
    """A prompt template file is unreadable or malformed."""


class BackendError(AugpeError):
    """An LLM / embedding backend cannot be used (missing package, bad key, unknown model)."""


def missing_dependency(
    package: str, extra: str | None = None, pip_name: str | None = None
) -> BackendError:
    """An error telling the user exactly what to install."""
    hint = f"pip install 'augpe[{extra}]'" if extra else f"pip install {pip_name or package}"
    return BackendError(
        f"the optional dependency '{package}' is not installed; install it with: {hint}"
    )
