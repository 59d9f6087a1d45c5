"""`augpe.run(config)`: the one door. Loads data, builds components, runs `evolve`, writes the run.

Run folder (release-safe: synthetic text, labels, noisy counts, the ledger; see README):
    config.yaml      resolved config (noise seed redacted)
    ledger.json      every DP release and its sigma; eps/mu derived
    synthetic.jsonl  the DP synthetic corpus
    iterations.jsonl per-iteration statistics (synthetic / noisy values only)
    timings.json     per-stage wall time, tokens, tokens/s
    summary.json     sizes, privacy, throughput
    state/           populations and noisy histograms as they are produced (resume reuses them)
Private folder (`<run>.PRIVATE` by default; never released): private-embedding cache, noise seed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from augpe.apis import TextAPIs
from augpe.config import Config
from augpe.data import PrivateData, load_private_data
from augpe.embed import Embedder, PrivateEmbeddings, SentenceTransformerEmbedder, embed_private
from augpe.errors import ConfigError
from augpe.evolve import Candidates, evolve
from augpe.llm import make_llm
from augpe.llm.base import LLM
from augpe.llm.cache import resolve_cache_path, wrap_with_cache
from augpe.llm.cost import cost_report
from augpe.population import Sample, corpus_record
from augpe.privacy import (
    GaussianRelease,
    Ledger,
    add_gaussian_noise,
    default_delta,
    schedule_sigmas,
)
from augpe.prompts import PromptSet, load_prompt_set
from augpe.select import allocate
from augpe.timing import Timer
from augpe.vote import class_histogram, vote_histogram

log = logging.getLogger("augpe")

CORPUS = "synthetic.jsonl"
LEDGER = "ledger.json"


# ---- atomic files ----------------------------------------------------------------------------
def write_atomic(path: Path, text: str) -> None:
    """Write-then-rename: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


# ---- the run state (implements evolve.RunState) ---------------------------------------------
class RunStore:
    """DP-safe intermediate results, stored as they are produced so that a resume reuses them."""

    def __init__(
        self,
        root: Path,
        ledger: Ledger,
        sigmas: list[float],
        noise_rng: Callable[[int], np.random.Generator],
    ) -> None:
        self.root = root
        self.state = root / "state"
        self.state.mkdir(parents=True, exist_ok=True)
        self.ledger = ledger
        self.sigmas = sigmas  # sigma_t of vote t is sigmas[t - 1]
        self.noise_rng = noise_rng
        self.iter_log: dict[int, dict[str, object]] = {}

    def population(self, t: int, make: Callable[[], Candidates]) -> Candidates:
        path = self.state / f"population_{t:02d}.json"
        if path.is_file():
            raw = json.loads(path.read_text(encoding="utf-8"))
            return Candidates(
                [Sample.from_dict(d) for d in raw["samples"]],
                [[Sample.from_dict(d) for d in kids] for kids in raw["lookahead"]],
            )
        gen = make()
        write_json(
            path,
            {
                "samples": [s.to_dict() for s in gen.samples],
                "lookahead": [[k.to_dict() for k in kids] for kids in gen.lookahead],
            },
        )
        return gen

    def noisy_votes(
        self, t: int, population: list[Sample], votes: Callable[[], np.ndarray]
    ) -> np.ndarray:
        """The DP release of iteration t. Stored before use; if stored, reused, never redrawn."""
        path = self.state / f"votes_{t:02d}.json"
        ids = [s.id for s in population]
        if path.is_file():
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw["ids"] != ids:
                raise RuntimeError(
                    f"{path}: stored histogram belongs to another population; cannot resume"
                )
            noisy = np.asarray(raw["noisy"], dtype=np.float64)
        else:
            clean = votes()
            noisy = add_gaussian_noise(clean, self.sigmas[t - 1], self.noise_rng(t))
            del clean  # the clean histogram never leaves this function
            write_json(path, {"ids": ids, "sigma": self.sigmas[t - 1], "noisy": noisy.tolist()})
        self.record(GaussianRelease(f"votes_t{t}", self.sigmas[t - 1], iteration=t))
        self.iter_log.setdefault(t, {}).update(  # noisy, hence DP-safe, summaries
            {
                "sigma": self.sigmas[t - 1],
                "noisy_votes_max": round(float(noisy.max(initial=0.0)), 3),
                "noisy_votes_sum": round(float(noisy.sum()), 3),
            }
        )
        return noisy

    def record(self, event: GaussianRelease) -> None:
        """Add a release to the ledger once (a resumed run finds it already there)."""
        if all(e.name != event.name for e in self.ledger.events):
            self.ledger.record(event)
            self.ledger.save(self.root / LEDGER)

    def log_iteration(self, t: int, record: dict[str, object]) -> None:
        self.iter_log.setdefault(t, {}).update(record)


# ---- building blocks -------------------------------------------------------------------------
@dataclass
class RunResult:
    run_dir: Path
    corpus_path: Path
    samples: list[dict[str, Any]]
    ledger: Ledger
    summary: dict[str, Any]


def _private_dir(cfg: Config) -> Path:
    return (
        Path(cfg.output.private_dir)
        if cfg.output.private_dir
        else Path(cfg.output.dir + ".PRIVATE")
    )


def _prepare_run_dir(cfg: Config, resume: bool) -> Path:
    root = Path(cfg.output.dir)
    if resume:
        if not (root / "config.yaml").is_file():
            raise ConfigError(f"--resume: {root} is not an augpe run folder (no config.yaml)")
        return root
    if root.exists() and any(root.iterdir()):
        if not cfg.output.overwrite:
            raise ConfigError(
                f"output.dir: {root} already holds a run; use --resume to continue it, "
                "or set output.overwrite: true (or pick another folder)"
            )
        shutil.rmtree(root)
        shutil.rmtree(_private_dir(cfg) / "state", ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    return root


def _noise_seed(cfg: Config, private_dir: Path) -> int:
    """Noise must be unpredictable to readers of the release: its seed never goes in the run folder.

    The seed in use is kept in the PRIVATE folder, so a resumed run continues with the same one.
    """
    path = private_dir / "state" / "noise_seed.json"
    if path.is_file():
        return int(json.loads(path.read_text())["noise_seed"])
    seed = cfg.privacy.noise_seed if cfg.privacy.noise_seed is not None else secrets.randbits(63)
    write_json(path, {"noise_seed": seed})
    return seed


def _fmt_sigmas(sigmas: list[float]) -> str:
    return (
        f"{sigmas[0]:.4f}"
        if len(set(sigmas)) == 1
        else "[" + ", ".join(f"{s:.3f}" for s in sigmas) + "]"
    )


def released_config(cfg: Config) -> dict[str, Any]:
    d = cfg.dump()
    if d["privacy"].get("noise_seed") is not None:
        d["privacy"]["noise_seed"] = "<redacted>"
    return d


def class_sizes(
    cfg: Config,
    data: PrivateData,
    store: RunStore,
    sigma_counts: float | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[float] | None]:
    """Samples per class from DP counts, public fractions or a uniform split (never raw counts)."""
    mode = cfg.privacy.class_counts
    if mode == "uniform":
        return allocate(cfg.pe.samples, np.ones(data.num_classes)), None
    if mode == "public":
        fr = cfg.privacy.public_class_fractions or {}
        missing = [c for c in data.class_names if c not in fr]
        if missing:
            raise ConfigError(f"privacy.public_class_fractions has no entry for classes {missing}")
        return allocate(cfg.pe.samples, np.array([fr[c] for c in data.class_names])), None
    path = store.state / "class_counts.json"
    if path.is_file():
        noisy = np.asarray(json.loads(path.read_text())["noisy"], dtype=np.float64)
    else:
        clean = class_histogram(data.class_ids, data.num_classes, data.user_ids)
        noisy = add_gaussian_noise(clean, sigma_counts or 0.0, rng)
        write_json(
            path, {"classes": data.class_names, "sigma": sigma_counts, "noisy": noisy.tolist()}
        )
    store.record(GaussianRelease("class_counts", sigma_counts or 0.0, kind="class_counts"))
    return allocate(cfg.pe.samples, noisy), [round(float(x), 2) for x in noisy]


def build_llm(cfg: Config, show_progress: bool = True) -> LLM:
    """The configured backend (or mixture) behind the persistent request cache."""
    llm = make_llm(cfg.generation, show_progress=show_progress)
    private = math.isfinite(cfg.privacy.epsilon)
    return wrap_with_cache(llm, resolve_cache_path(cfg.generation, cfg.output.dir, private=private))


def build_embedder(cfg: Config, show_progress: bool = True) -> Embedder:
    return SentenceTransformerEmbedder(
        cfg.embedding.model,
        cfg.embedding.device,
        cfg.embedding.batch_size,
        show_progress=show_progress,
        max_seq_length=cfg.embedding.max_seq_length,
    )


def overlap_private(cfg: Config) -> bool:
    """Whether the private embedding runs alongside the initial generation (`embedding.overlap`)."""
    if cfg.embedding.overlap != "auto":
        return cfg.embedding.overlap == "on"
    if cfg.embedding.device != "cpu":
        return True
    gen = cfg.generation
    members = [gen.mixture_member(i)[0] for i in range(len(gen.mixture))] or [gen]

    def on_cpu(g: Any) -> bool:
        if g.backend == "embedded":
            return True
        if g.backend != "transformers":
            return False  # a server (openai-compatible) or vLLM on a GPU
        if g.device is not None:
            return str(g.device) == "cpu"
        import torch

        return not torch.cuda.is_available()

    return not any(on_cpu(g) for g in members)


def build_components(cfg: Config, show_progress: bool = True) -> tuple[LLM, Embedder]:
    """Both models, loaded once per run."""
    return build_llm(cfg, show_progress), build_embedder(cfg, show_progress)


# ---- the door --------------------------------------------------------------------------------
def run(
    cfg: Config,
    resume: bool = False,
    show_progress: bool = True,
    llm: LLM | None = None,
    embedder: Embedder | None = None,
) -> RunResult:
    """Turn the private dataset of `cfg` into a DP synthetic corpus. See module docstring for outputs."""
    timer = Timer()
    # 1. Validate everything cheap before touching models or disk.
    data = load_private_data(cfg.data)
    prompts = load_prompt_set(cfg.generation.prompts)
    if cfg.pe.samples < data.num_classes:
        raise ConfigError(
            f"pe.samples={cfg.pe.samples} is smaller than the number of classes ({data.num_classes}); "
            "every class needs at least one synthetic sample"
        )
    delta = cfg.privacy.delta or default_delta(len(data))
    delta_rule = (
        "set by the user" if cfg.privacy.delta else "1/(N ln N), N = private records (public)"
    )
    share = cfg.privacy.class_count_share if cfg.privacy.class_counts == "dp" else None
    sigmas, sigma_counts = schedule_sigmas(
        cfg.privacy.epsilon, delta, cfg.schedule_weights(), share
    )
    neighbouring = "add/remove one user" if cfg.data.user_column else "add/remove one record"
    log.info(
        "private data: %d records, %d classes (%d empty texts dropped) from %s",
        len(data),
        data.num_classes,
        data.dropped_empty,
        data.source,
    )
    log.info(
        "privacy: eps=%g delta=%.3g T=%d -> sigma_t=%s%s",
        cfg.privacy.epsilon,
        delta,
        cfg.pe.iterations,
        _fmt_sigmas(sigmas),
        f", sigma={sigma_counts:.4f} for class counts" if sigma_counts else "",
    )
    if math.isinf(cfg.privacy.epsilon):
        log.warning("privacy.epsilon is inf: NO NOISE, the output is NOT differentially private")

    # 2. Run folder, ledger, private folder.
    root = _prepare_run_dir(cfg, resume)
    private_dir = _private_dir(cfg)
    write_atomic(
        private_dir / "README.txt", "PRIVATE: derived from private data. Never share or release.\n"
    )
    if not resume:
        write_atomic(root / "config.yaml", yaml.safe_dump(released_config(cfg), sort_keys=False))
    ledger = (
        Ledger.load(root / LEDGER)
        if (root / LEDGER).is_file()
        else Ledger(
            delta=delta,
            target_epsilon=cfg.privacy.epsilon,
            neighbouring=neighbouring,
            delta_rule=delta_rule,
        )
    )
    noise_seed = _noise_seed(cfg, private_dir)
    store = RunStore(root, ledger, sigmas, lambda t: np.random.default_rng([noise_seed, t]))

    # 3. Components: loaded once.
    own_llm = llm is None
    with timer.stage(0, "load_models"):
        if llm is None and embedder is None:
            llm, embedder = build_components(cfg, show_progress)
        embedder = embedder or build_embedder(cfg, show_progress)
        llm = llm or build_llm(cfg, show_progress)
    try:
        return _run_loaded(
            cfg,
            data,
            prompts,
            sigmas,
            sigma_counts,
            delta,
            root,
            private_dir,
            ledger,
            store,
            noise_seed,
            llm,
            embedder,
            timer,
        )
    finally:
        if own_llm:
            llm.close()


def _run_loaded(
    cfg: Config,
    data: PrivateData,
    prompts: PromptSet,
    sigmas: list[float],
    sigma_counts: float | None,
    delta: float,
    root: Path,
    private_dir: Path,
    ledger: Ledger,
    store: RunStore,
    noise_seed: int,
    llm: LLM,
    embedder: Embedder,
    timer: Timer,
) -> RunResult:
    def embed_all_private() -> np.ndarray:
        with timer.stage(0, "embed_private"):
            return embed_private(
                embedder,
                data.texts,
                data.fingerprint(),
                private_dir / "cache" if cfg.embedding.cache_private else None,
            )

    sizes, noisy_counts = class_sizes(
        cfg, data, store, sigma_counts, np.random.default_rng([noise_seed, 0])
    )
    descriptions = [cfg.generation.label_descriptions.get(c, c) for c in data.class_names]
    apis = TextAPIs(llm, prompts, cfg.generation, descriptions, cfg.seed)
    # The initial population needs no private data: its generation can hide the private embedding.
    overlap = overlap_private(cfg)
    private = PrivateEmbeddings(embed_all_private, background=overlap, timer=timer)

    def vote(emb: np.ndarray, classes: np.ndarray) -> np.ndarray:
        return vote_histogram(
            private.get(),
            data.class_ids,
            emb,
            classes,
            cfg.pe.k,
            cfg.pe.distance,
            data.user_ids,
            cfg.pe.vote_chunk,
        )

    # 4. The method.
    result = evolve(
        apis,
        private.after(embedder),  # the model is free once the private texts are done
        vote,
        sizes,
        cfg.pe,
        store,
        timer,
        rng_for=lambda t: np.random.default_rng([cfg.seed, 1_000_003, t]),
    )
    ledger.assert_within_target()

    # 5. Outputs (atomic).
    rows = [
        corpus_record(s, data.class_names, data.class_labels, result.votes.get(s.id))
        for s in result.output
    ]
    corpus = root / CORPUS
    write_jsonl(corpus, rows)
    usage = llm.usage
    gen_usage: dict[str, Any] = {
        "requests": usage.requests,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "seconds": round(usage.seconds, 3),
        "tokens_per_second": round(usage.tokens_per_second, 2),
    }
    timings = {**timer.to_dict(), "overlap_private": overlap, "generation": gen_usage}
    write_json(root / "timings.json", timings)
    write_jsonl(
        root / "iterations.jsonl",
        [
            {"iteration": t, **r, "seconds": timer.iteration(t)}
            for t, r in sorted(store.iter_log.items())
        ],
    )
    per_class = {c: sum(1 for r in rows if r["class"] == c) for c in data.class_names}
    summary = {
        "corpus": str(corpus),
        "samples": len(rows),
        "samples_per_class": per_class,
        "target_samples_per_class": dict(zip(data.class_names, sizes.tolist())),
        "noisy_class_counts": dict(zip(data.class_names, noisy_counts)) if noisy_counts else None,
        "private_records": len(data),
        "epsilon": ledger.epsilon(),
        "delta": delta,
        "sigma_votes": sigmas,
        "sigma_class_counts": sigma_counts,
        "iterations": cfg.pe.iterations,
        "generation": {**apis.stats.to_dict(), **gen_usage, "model": llm.name},
        "cost": cost_report(llm),
        "wall_seconds": timings["wall_seconds"],
        "stages_seconds": timings["totals"],
        "overlap_private": overlap,
    }
    write_json(root / "summary.json", summary)
    return RunResult(root, corpus, rows, ledger, summary)
