"""A resume continues the run as it started: its settings are compared with the run's own.

A fresh run keeps the config it started with under state/ (never released); `--resume` loads the
run folder's config.yaml, so an edit there, a `--set`, or another config handed to `augpe.run`
shows as a change and is refused, listed as `key: stored -> now`. Only the settings in
`RESUME_MAY_CHANGE` may differ: where the folder is, overwrite, and settings of speed, retries,
cost and placement that cannot change the corpus or the ledger. Privacy settings are also proven
by the ledger (`augpe.privacy.session`), which refuses in its own words when they differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from augpe.config import Config, parse_config
from augpe.errors import ConfigError
from augpe.privacy.plan import PrivacySettings

__all__ = ["RESUME_MAY_CHANGE", "changes_since_start"]

RESUME_MAY_CHANGE: tuple[str, ...] = (
    "output.dir",  # the folder being resumed (it may have moved)
    "output.overwrite",
    "privacy.noise_seed",  # never stored: the PRIVATE folder keeps the run's seed
    "execution",  # Ray or local, replicas, shards: the same corpus and ledger (a test checks)
    "generation.max_cost",  # raise the spending cap a run stopped at, then resume
    "generation.price_per_1k_input",
    "generation.price_per_1k_output",
    "generation.concurrency",
    "generation.timeout",
    "generation.request_retries",
    "generation.retry_backoff",
    "generation.retry_backoff_max",
    "generation.preflight",
    "generation.api_key_env",
    "generation.api_key_file",
    "embedding.cache_private",
    "embedding.overlap",
    "pe.vote_chunk",  # memory only: the k-NN search is exact
    "pe.knn_device",  # every device returns the same neighbours
)
"""Settings a resume may change: none of them changes what the run produces."""


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def _may_change(key: str) -> bool:
    return any(key == a or key.startswith(a + ".") for a in RESUME_MAY_CHANGE)


def changes_since_start(path: Path, has_ledger: bool, cfg: Config) -> None:
    """Refuse a resume whose settings differ from those its run started with (stored in `path`;
    `has_ledger`: the run has a ledger, which proves its own privacy settings)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"--resume: cannot read the run's settings from {path}: {err}") from None
    stored: Config | None
    try:
        stored = parse_config(raw, str(path)) if isinstance(raw, dict) else None
    except ConfigError:
        stored = None  # written by another version: compare the stored text as it is
    before = _flat(stored.dump() if stored is not None else raw if isinstance(raw, dict) else {})
    now = _flat(yaml.safe_load(yaml.safe_dump(cfg.dump())) if stored is None else cfg.dump())
    changed = [
        k
        for k in sorted(set(before) | set(now))
        if before.get(k) != now.get(k) and not _may_change(k)
    ]
    if not changed:
        return
    if (
        stored is not None
        and has_ledger
        and PrivacySettings.from_config(stored) != PrivacySettings.from_config(cfg)
    ):
        return  # the ledger's own comparison (augpe.privacy.session) refuses it, naming them
    listed = "; ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed)
    raise ConfigError(
        f"--resume: settings changed since the run started ({listed}); a resume continues the "
        f"same run: undo the change (the run's settings are in {path}), or start a fresh run in "
        "another output.dir"
    )
