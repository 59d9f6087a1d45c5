"""The run folder's format, owned here: every file name, what each holds, what may be released.

Writers (the runner) and readers (release, export, card, evaluate, the CLI, benchmarks) go through
`RunLayout`; nobody else spells a file name. `ARTEFACTS` is the one list the release allow-list and
the README's table are generated from.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from augpe.atomic import write_atomic
from augpe.config import Config
from augpe.errors import ConfigError

__all__ = ["ARTEFACTS", "PRIVATE_SUFFIX", "RunLayout", "artefact_table", "released_config"]

PRIVATE_SUFFIX = ".PRIVATE"

ARTEFACTS: tuple[tuple[str, bool, str], ...] = (
    # (name in the run folder, released by `augpe release`, what it holds and why that is safe)
    (
        "synthetic.jsonl",
        True,
        (
            "the DP corpus: `text`, `class`, `labels`, `iteration`, `parent_id`, "
            "`model`, `op`, `noisy_votes`; post-processing of noisy votes"
        ),
    ),
    (
        "ledger.json",
        True,
        (
            "run nonce, privacy settings, every DP release with its sigma; eps, mu "
            "and delta derived (delta from the user or from a noisy count, never from N)"
        ),
    ),
    (
        "config.yaml",
        True,
        (
            "the resolved config; released with file paths cut to their names, "
            "never holds the noise seed"
        ),
    ),
    ("summary.json", True, "sizes per class (synthetic and noisy), eps, delta, sigmas, tokens"),
    ("iterations.jsonl", True, "per vote: population, parents, sigma, noisy vote max / sum"),
    (
        "timings.json",
        False,
        (
            "wall time per stage, tokens/s: grows with N and the private texts' "
            "lengths (a side channel), so it stays with the operator"
        ),
    ),
    (
        "state/",
        False,
        (
            "populations and noisy histograms as produced (for `--resume`); with "
            "`--state`, the files that hold only synthetic text or noisy values"
        ),
    ),
)
"""The one list of run-folder artefacts (a test checks the README shows exactly this table)."""


def artefact_table() -> str:
    """The README's run-folder table, generated from ARTEFACTS."""
    rows = ["| file | released | what |", "|---|---|---|"]
    for name, released, what in ARTEFACTS:
        rows.append(f"| `{name}` | {'yes' if released else 'no'} | {what} |")
    return "\n".join(rows)


@dataclass(frozen=True)
class RunLayout:
    """Where every file of one run folder (and its PRIVATE folder) lives."""

    root: Path
    private: Path

    @classmethod
    def of(cls, cfg: Config) -> RunLayout:
        root = Path(cfg.output.dir)
        private = Path(cfg.output.private_dir) if cfg.output.private_dir else None
        return cls(root, private or Path(str(root) + PRIVATE_SUFFIX))

    @classmethod
    def read(cls, run_dir: str | Path) -> RunLayout:
        """The layout of an existing run folder, its PRIVATE folder taken from its config."""
        root = Path(run_dir)
        cfg_path = root / "config.yaml"
        raw: dict[str, Any] = {}
        if cfg_path.is_file():
            raw = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
        pd = (raw.get("output") or {}).get("private_dir")
        return cls(root, Path(pd) if pd else Path(str(root) + PRIVATE_SUFFIX))

    config = property(lambda self: self.root / "config.yaml")
    ledger = property(lambda self: self.root / "ledger.json")
    corpus = property(lambda self: self.root / "synthetic.jsonl")
    summary = property(lambda self: self.root / "summary.json")
    iterations = property(lambda self: self.root / "iterations.jsonl")
    timings = property(lambda self: self.root / "timings.json")
    state = property(lambda self: self.root / "state")
    private_cache = property(lambda self: self.private / "cache")

    def population(self, t: int) -> Path:
        return self.state / f"population_{t:02d}.json"

    @staticmethod
    def votes_file(t: int) -> str:
        """The name, under state/, of vote t's stored noisy histogram."""
        return f"votes_{t:02d}.json"

    def prepare(
        self, cfg: Config, resume: bool, forget: Callable[[Path, Path], None] | None = None
    ) -> None:
        """Make the folder for a fresh run (refusing or overwriting an old one) or check that a
        resumed one exists. `forget(private_dir, ledger_path)` drops an overwritten run's secret."""
        if resume:
            if not self.config.is_file():
                raise ConfigError(
                    f"--resume: {self.root} is not an augpe run folder (no config.yaml)"
                )
            return
        if self.root.exists() and any(self.root.iterdir()):
            if not cfg.output.overwrite:
                raise ConfigError(
                    f"output.dir: {self.root} already holds a run; use --resume to continue it, "
                    "or set output.overwrite: true (or pick another folder)"
                )
            if forget is not None and self.ledger.is_file():
                forget(self.private, self.ledger)  # an overwritten run can never be resumed
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self.config, yaml.safe_dump(released_config(cfg), sort_keys=False))
        write_atomic(
            self.private / "README.txt",
            "PRIVATE: derived from private data. Never share or release.\n",
        )


def released_config(cfg: Config) -> dict[str, Any]:
    """The config as the run folder keeps it: everything but the noise seed, which lives only in
    the PRIVATE folder (the ledger says whether the user set one). A resume reloads it as is."""
    d = cfg.dump()
    d["privacy"]["noise_seed"] = None
    return d
