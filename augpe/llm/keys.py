"""The API key of a hosted backend: read from an environment variable or a key file, never the config.

Only the name of the variable or the path of the file is in `config.yaml`, so a run folder is safe
to share. The key itself goes to the provider's SDK and nowhere else; `source` (what messages may
name) says where it came from without showing it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from augpe.config import OpenAIGeneration
from augpe.errors import ConfigError

__all__ = ["read_api_key"]

log = logging.getLogger("augpe")


def read_api_key(cfg: OpenAIGeneration) -> tuple[str | None, str]:
    """The key and where it came from (for messages; the source names a variable or file only)."""
    if cfg.api_key_file:
        path = Path(cfg.api_key_file).expanduser()
        source = f"the key file {path}"
        if not path.is_file():
            raise ConfigError(f"generation.api_key_file: {path} does not exist")
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRGRP | stat.S_IROTH):
                log.warning(
                    "generation.api_key_file: %s is readable by other users; chmod 600 it", path
                )
        except OSError:
            pass
        key = path.read_text(encoding="utf-8").strip()
        if not key:
            raise ConfigError(f"generation.api_key_file: {path} is empty")
        return key, source
    source = f"${cfg.api_key_env}"
    key = os.environ.get(cfg.api_key_env, "").strip()
    return (key or None), source
