"""The run folder's format, owned here: every file name, what each holds, what may be released.

Writers (the runner) and readers (release, export, card, evaluate, the CLI, benchmarks) go through
`RunLayout`; nobody else spells a file name. `ARTEFACTS` is the one list the release allow-list and
docs/privacy.md's table are generated from.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from augpe.atomic import write_atomic
from augpe.config import Config
from augpe.errors import ConfigError
from augpe.runner.resume import changes_since_start

if TYPE_CHECKING:
    from augpe.privacy.ledger import Ledger

try:
    import fcntl
except ImportError:  # pragma: no cover - no advisory file locks (Windows): runs are not locked
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ARTEFACTS",
    "CONFIG",
    "CORPUS",
    "LEDGER",
    "LOCK_SUFFIX",
    "PRIVATE_SUFFIX",
    "STATE",
    "SUMMARY",
    "RunFolder",
    "RunLayout",
    "artefact_table",
    "inside",
    "released_config",
]

PRIVATE_SUFFIX = ".PRIVATE"
CONFIG, LEDGER, CORPUS, SUMMARY = "config.yaml", "ledger.json", "synthetic.jsonl", "summary.json"
ITERATIONS, TIMINGS, STATE = "iterations.jsonl", "timings.json", "state"
LOCK_SUFFIX = ".lock"
"""`<output.dir>.lock`, beside the run folder (never in it, so never released): held by a run."""

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
            "run nonce, privacy settings, every DP release with its sigma, sensitivity, "
            "replace-one sensitivity and input digest; eps, mu derived; delta fixed from the "
            "config before any data was read, never from N"
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
    (
        "summary.json",
        True,
        (
            "sizes per class (synthetic and noisy), eps, delta, sigmas, the tokens of every "
            "answer (cached or not); no cost paid, cache statistics or paths"
        ),
    ),
    ("iterations.jsonl", True, "per vote: population, parents, sigma, noisy vote max / sum"),
    (
        "timings.json",
        False,
        (
            "wall time per stage, tokens/s (grows with N and the private texts' lengths: a "
            "side channel), what was paid and the request cache's statistics and path (they "
            "vary with other runs): it stays with the operator"
        ),
    ),
    (
        "state/",
        False,
        (
            "populations and noisy histograms as produced (for `--resume`), the config the run "
            "started with and its running spend; with `--state`, only the files that hold "
            "synthetic text or noisy values"
        ),
    ),
)
"""The one list of run-folder artefacts (a test checks docs/privacy.md shows exactly this table)."""


def artefact_table() -> str:
    """docs/privacy.md's run-folder table, generated from ARTEFACTS."""
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
    def read(cls, run_dir: str | os.PathLike[str]) -> RunLayout:
        """The layout of an existing run folder, its PRIVATE folder taken from its config."""
        root = Path(run_dir)
        cfg_path = root / CONFIG
        raw: dict[str, Any] = {}
        if cfg_path.is_file():
            raw = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
        pd = (raw.get("output") or {}).get("private_dir")
        return cls(root, Path(pd) if pd else Path(str(root) + PRIVATE_SUFFIX))

    config = property(lambda self: self.root / CONFIG)
    ledger = property(lambda self: self.root / LEDGER)
    corpus = property(lambda self: self.root / CORPUS)
    summary = property(lambda self: self.root / SUMMARY)
    iterations = property(lambda self: self.root / ITERATIONS)
    timings = property(lambda self: self.root / TIMINGS)
    state = property(lambda self: self.root / STATE)
    spend = property(
        lambda self: self.state / "spend.json"
    )  # requests, tokens, cost: all invocations
    started_config = property(lambda self: self.state / "config_at_start.yaml")
    private_cache = property(lambda self: self.private / "cache")
    lock_file = property(lambda self: Path(str(self.root) + LOCK_SUFFIX))

    def population(self, t: int) -> Path:
        return self.state / f"population_{t:02d}.json"

    @staticmethod
    def votes_file(t: int) -> str:
        """The name, under state/, of vote t's stored noisy histogram."""
        return f"votes_{t:02d}.json"

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run folder for one run (an exclusive flock on `<output.dir>.lock`): a second
        run on the same folder fails at once instead of writing into it alongside."""
        if fcntl is None:  # pragma: no cover
            yield
            return
        path = self.lock_file
        while True:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                if err.errno == errno.ENOSPC:
                    raise
                raise ConfigError(
                    f"output.dir: cannot create the lock file {path}: {err.strerror or err}"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ConfigError(
                    f"output.dir: another augpe run holds {self.root} (lock file {path}); wait "
                    "for it to finish, or pick another output.dir"
                ) from None
            try:  # the holder before us may have removed the file between our open and lock
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
            os.close(fd)

    def prepare(
        self, cfg: Config, resume: bool, forget: Callable[[Path, Path], None] | None = None
    ) -> None:
        """Make the folder for a fresh run (refusing, or overwriting only an earlier augpe run
        that holds nothing else), or check that a resumed one exists and that its settings are
        those it started with. `forget(private_dir, ledger_path)` drops an overwritten run's
        secret."""
        self._check_places()
        if resume:
            if not self.config.is_file():
                raise ConfigError(
                    f"--resume: {self.root} is not an augpe run folder (no config.yaml)"
                )
            started = self.started_config if self.started_config.is_file() else self.config
            changes_since_start(started, self.ledger.is_file(), cfg)
            return
        if self.root.exists() and any(self.root.iterdir()):
            why = self._not_a_run(cfg)
            if why is not None:
                raise ConfigError(
                    f"output.dir: {self.root} is not empty and not only an earlier augpe run: "
                    f"it {why}; nothing was changed there: pick a new or empty folder"
                )
            if not cfg.output.overwrite:
                raise ConfigError(
                    f"output.dir: {self.root} already holds a run; use --resume to continue it, "
                    "or set output.overwrite: true (or pick another folder)"
                )
            if forget is not None and self.ledger.is_file():
                forget(self.private, self.ledger)  # an overwritten run can never be resumed
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        stored = yaml.safe_dump(released_config(cfg), sort_keys=False)
        write_atomic(self.config, stored)
        write_atomic(self.started_config, stored)  # what a resume compares its settings with
        write_atomic(
            self.private / "README.txt",
            "PRIVATE: derived from private data. Never share or release.\n",
        )

    def _check_places(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(
                f"output.dir: {self.root} is a file, not a folder; name a folder for the run "
                "(it is created if missing)"
            )
        if inside(self.private, self.root):
            raise ConfigError(
                f"output.private_dir: {self.private} lies inside the run folder "
                f"(output.dir = {self.root}), which is released and may be overwritten; put it "
                f"outside (by default it is {self.root}{PRIVATE_SUFFIX}, beside the run folder)"
            )

    def _not_a_run(self, cfg: Config) -> str | None:
        """Why the (non-empty) folder is not provably an earlier augpe run, or None if it is."""
        guarded = [
            (cfg.data.path, "the private data (data.path)"),
            (cfg.data.public_seed, "the public seed (data.public_seed)"),
            (str(self.private), "the PRIVATE folder (output.private_dir)"),
        ]
        for place, what in guarded:
            if place and Path(place).exists() and inside(Path(place), self.root):
                return f"holds {what}"
        foreign = _foreign_entries(self.root)
        if foreign:
            shown = ", ".join(foreign[:5]) + (
                f", ... ({len(foreign) - 5} more)" if foreign[5:] else ""
            )
            return f"holds files that are not part of an augpe run: {shown}"
        if not self.config.is_file():
            return "has no config.yaml"
        return None


@dataclass(frozen=True)
class RunFolder:
    """An existing run folder, read: its config, summary, ledger, corpus rows and populations.

    The read side of the format `RunLayout` names: evaluate/, release/, benchmarks and the CLI
    open a run through it and never spell a file name or parse a run file themselves.
    """

    layout: RunLayout

    @classmethod
    def open(cls, run_dir: str | os.PathLike[str]) -> RunFolder:
        return cls(RunLayout.read(run_dir))

    root = property(lambda self: self.layout.root)
    finished = property(lambda self: self.layout.corpus.is_file())
    """A finished run has its corpus (written last, atomically)."""

    def config(self) -> dict[str, Any]:
        """config.yaml as stored (paths cut to their names in a release): {} when absent."""
        path = self.layout.config
        if not path.is_file():
            return {}
        return dict(yaml.safe_load(path.read_text(encoding="utf-8")) or {})

    def summary(self) -> dict[str, Any]:
        """summary.json: {} when absent (a run killed before its outputs)."""
        return _json_or_empty(self.layout.summary)

    def ledger(self) -> Ledger:
        from augpe.privacy.ledger import Ledger

        return Ledger.load(self.layout.ledger)

    def corpus_rows(self) -> list[dict[str, Any]]:
        """The rows of synthetic.jsonl, in order."""
        with open(self.layout.corpus, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def populations(self) -> list[tuple[int, Path]]:
        """(t, state/population_tt.json) of every stored population, in order of t."""
        found = sorted(self.layout.state.glob("population_*.json"))
        tail = [p.stem.rsplit("_", 1)[-1] for p in found]
        return [(int(t), p) for t, p in zip(tail, found) if t.isdigit()]

    def population_samples(self, t: int) -> list[dict[str, Any]] | None:
        """The samples of population t as stored (dicts of `Sample`), None when absent."""
        raw = _json_or_empty(self.layout.population(t))
        return list(raw["samples"]) if "samples" in raw else None


def _json_or_empty(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")))


_RUN_ENTRIES = {
    **{name.rstrip("/"): name.endswith("/") for name, _, _ in ARTEFACTS},
    "bench_run.json": False,  # the marker benchmarks/run.py writes into a finished run folder
}
"""Top-level names an augpe run folder may hold, and whether each is a folder: ARTEFACTS and the
known extras. Overwriting deletes a folder that holds nothing else."""


def _is_temp(p: Path) -> bool:
    """A file `augpe.atomic.write_atomic` left behind when killed mid-write."""
    return p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file()


def _foreign_entries(root: Path) -> list[str]:
    """Entries of a run folder that no augpe run writes (sorted relative names)."""
    out = []
    for p in sorted(root.iterdir()):
        is_dir = _RUN_ENTRIES.get(p.name)
        if _is_temp(p) or (is_dir is False and p.is_file()):
            continue
        if is_dir and p.is_dir() and not p.is_symlink():
            out += [
                f"{p.name}/{q.name}"
                for q in sorted(p.iterdir())
                if not (_is_temp(q) or (q.is_file() and q.suffix in (".json", ".yaml")))
            ]
            continue
        out.append(p.name + ("/" if p.is_dir() else ""))
    return out


def inside(a: Path, b: Path) -> bool:
    """Whether `a` is `b` or lies inside it (paths resolved)."""
    a, b = a.resolve(), b.resolve()
    return a == b or b in a.parents


def released_config(cfg: Config) -> dict[str, Any]:
    """The config as the run folder keeps it: everything but the noise seed, which lives only in
    the PRIVATE folder (the ledger says whether the user set one). A resume reloads it as is."""
    d = cfg.dump()
    d["privacy"]["noise_seed"] = None
    return d
