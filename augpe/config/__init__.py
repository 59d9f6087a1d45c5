"""Run configuration: pydantic models loaded from YAML, validated at the door.

Every field has a default that gives a sensible run; `augpe run --help` and docs/configuration.md list them.
Validation errors name the setting (`privacy.epsilon`) so the user knows what to change.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from augpe.config.generation import GenerationConfig, LengthConfig
from augpe.config.sections import (
    DataConfig,
    EmbeddingConfig,
    ExecutionConfig,
    OutputConfig,
    PEConfig,
    PrivacyConfig,
    _Section,
)
from augpe.errors import ConfigError

__all__ = [
    "Config",
    "DataConfig",
    "EmbeddingConfig",
    "ExecutionConfig",
    "GenerationConfig",
    "LengthConfig",
    "OutputConfig",
    "PEConfig",
    "PrivacyConfig",
    "apply_override",
    "load_config",
    "parse_config",
]

log = logging.getLogger("augpe")

WEAK_EPSILON = 50.0
"""A finite privacy.epsilon above this is warned about at load: it protects essentially nothing."""


class Config(_Section):
    data: DataConfig
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    pe: PEConfig = Field(default_factory=PEConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    seed: int = 0

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        population = self.pe.samples * max(1, self.pe.variations)
        if self.pe.k > population:
            raise ValueError(
                f"pe.k = {self.pe.k} is larger than the population (pe.samples x pe.variations "
                f"= {population}); lower pe.k"
            )
        sched = self.privacy.schedule
        if isinstance(sched, list) and len(sched) != self.pe.iterations:
            raise ValueError(
                f"privacy.schedule has {len(sched)} weights but pe.iterations is {self.pe.iterations}"
            )
        if self.privacy.class_counts == "public" and not self.privacy.public_class_fractions:
            raise ValueError(
                "privacy.class_counts is 'public' but privacy.public_class_fractions is empty"
            )
        return self

    def schedule_weights(self) -> list[float]:
        sched, T = self.privacy.schedule, self.pe.iterations
        if sched == "constant":
            return [1.0] * T
        if sched == "linear":
            return [float(t) for t in range(1, T + 1)]
        return [float(w) for w in sched]

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"  - {loc}: {msg}")
    return "\n".join(lines)


def parse_config(raw: dict[str, Any], source: str = "<config>") -> Config:
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None
    eps = cfg.privacy.epsilon
    if math.isfinite(eps) and eps > WEAK_EPSILON:
        log.warning(
            "privacy.epsilon = %g (%s): above %g the guarantee gives essentially no protection "
            "(an observer's odds about any record may change by a factor of e^%g); pick a "
            "single-digit epsilon for a meaningful guarantee",
            eps,
            source,
            WEAK_EPSILON,
            eps,
        )
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config; `overrides` are `section.key=value` strings (value parsed as YAML)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot parse config file {p}: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {p} must hold a mapping at the top level")
    for ov in overrides or []:
        apply_override(raw, ov)
    # Relative data paths are relative to the config file, so configs travel with their data.
    data = raw.get("data")
    for key in ("path", "public_seed"):
        if isinstance(data, dict) and isinstance(data.get(key), str):
            given = Path(data[key])
            cand = p.parent / given
            if not given.is_absolute() and cand.exists():
                data[key] = str(cand.resolve())
            elif given.exists():  # absolute, so `augpe release` / `--resume` work from anywhere
                data[key] = str(given.resolve())
    return parse_config(raw, str(p))


def apply_override(raw: dict[str, Any], override: str) -> None:
    if "=" not in override:
        raise ConfigError(f"override '{override}' must look like section.key=value")
    key, value = override.split("=", 1)
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override '{override}': '{part}' is not a section")
    node[parts[-1]] = yaml.safe_load(value)
