"""`audit`: canaries into the private data of a config, one run, every score against its bound.

delta is fixed before the coin flips, so sigma does not depend on which canaries are in; each
of the two scores is tested at beta / 2 (Bonferroni), so the reported maximum holds at level beta.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augpe.audit.bounds import auroc, epsilon_lower_bound, one_run_bound, tpr_at_fpr
from augpe.audit.canaries import Canary, make_canaries
from augpe.audit.scores import NgramModel, ngram_secret_scores, nn_cosine_scores
from augpe.config import Config
from augpe.embed import Embedder
from augpe.errors import ConfigError
from augpe.llm.base import LLM
from augpe.privacy import PrivacySettings, planned_releases
from augpe.records.data import PrivateData, load_private_data

__all__ = ["FPR_TARGETS", "SCORES", "AuditReport", "ScoreResult", "audit"]

SCORES = ("nn_cosine", "ngram_secret")
FPR_TARGETS = (0.01, 0.05)


@dataclass
class ScoreResult:
    auroc: float
    tpr_at_fpr: dict[str, float]
    eps_lower_bound: float
    k: int
    guesses: int
    correct: int
    beta: float


@dataclass
class AuditReport:
    canaries: int
    included: int
    claimed_epsilon: float
    target_epsilon: float
    delta: float
    beta: float
    scores: dict[str, ScoreResult]
    eps_lower_bound: float  # max over scores; valid at level beta (Bonferroni over scores)
    synthetic_samples: int
    wall_seconds: float
    run_dir: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("claimed_epsilon", "target_epsilon"):
            if not math.isfinite(d[key]):
                d[key] = str(d[key])
        return d

    def summary(self) -> str:
        claimed = (
            f"{self.claimed_epsilon:.4g}"
            if math.isfinite(self.claimed_epsilon)
            else "inf (no noise)"
        )
        lines = [
            (
                f"privacy audit (one run, Steinke-Nasr-Jagielski 2023): {self.canaries} canaries, "
                f"{self.included} included, {self.synthetic_samples} synthetic samples"
            ),
            f"  claimed: eps = {claimed} at delta = {self.delta:.3g}",
            (
                f"  measured: eps lower bound = {self.eps_lower_bound:.3f} at "
                f"{100 * (1 - self.beta):.0f}% confidence (max over scores, Bonferroni-corrected)"
            ),
        ]
        for name, s in self.scores.items():
            tprs = ", ".join(f"TPR@{k} FPR = {v:.2f}" for k, v in s.tpr_at_fpr.items())
            lines.append(
                f"  {name:>12}: AUROC = {s.auroc:.3f}, {tprs}; {s.correct}/{s.guesses} guesses right "
                f"(k = {s.k} per side) -> eps >= {s.eps_lower_bound:.3f}"
            )
        if math.isfinite(self.claimed_epsilon) and self.eps_lower_bound > self.claimed_epsilon:
            lines.append(
                "  !! the measured lower bound EXCEEDS the claimed epsilon: the run is not as private as claimed"
            )
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def _write_audit_data(
    path: Path, cfg: Config, data: PrivateData, keep: np.ndarray, canaries: Sequence[Canary]
) -> None:
    """The audit's private dataset: the kept records plus the included canaries, as JSONL."""
    text_col, user_col = cfg.data.text_column, cfg.data.user_column
    by_name = dict(zip(data.class_names, data.class_labels))
    rows: list[dict[str, Any]] = []
    for i in keep.tolist():
        row: dict[str, Any] = {text_col: data.texts[i], **data.class_labels[int(data.class_ids[i])]}
        if user_col is not None and data.user_ids is not None:
            row[user_col] = f"user-{int(data.user_ids[i])}"
        rows.append(row)
    for c in canaries:
        if c.included:
            row = {text_col: c.text, **by_name[c.class_name]}
            if user_col is not None:
                row[user_col] = c.id  # a canary is its own user
            rows.append(row)
    order = np.random.default_rng(len(rows)).permutation(len(rows))  # canaries not all at the end
    path.write_text(
        "".join(json.dumps(rows[i], ensure_ascii=False) + "\n" for i in order), encoding="utf-8"
    )


def audit(
    cfg: Config,
    m: int = 100,
    *,
    seed: int = 0,
    k: int | Sequence[int] | None = None,
    beta: float = 0.05,
    canaries: Sequence[Canary] | None = None,
    llm: LLM | None = None,
    embedder: Embedder | None = None,
    workdir: str | Path | None = None,
    keep: bool = False,
    show_progress: bool = False,
) -> AuditReport:
    """Insert canaries into the private data of `cfg`, run the pipeline once, measure leakage.

    delta is fixed *before* the coin flips (the run's own, from the config alone: see
    `augpe.privacy.plan`), so sigma does not depend on which canaries are in. Everything written
    (data copy, canaries, run, PRIVATE folder) goes to `workdir` (a temp folder, deleted unless
    keep=True). `canaries`, `llm`, `embedder`: bring your own (tests do).
    """
    from augpe.runner.checks import resolved_config
    from augpe.runner.components import build_components, build_embedder, build_llm
    from augpe.runner.compose import run

    cfg = resolved_config(cfg)
    t0 = time.perf_counter()
    if not 0.0 < beta < 1.0:
        raise ConfigError(f"audit: beta must be in (0, 1), got {beta}")
    data = load_private_data(cfg.data)
    rng = np.random.default_rng([seed, 0xA0D1])
    if canaries is None:
        canaries, held = make_canaries(data, m, rng)
    else:
        held = np.zeros(0, dtype=np.int64)
        unknown = {c.class_name for c in canaries} - set(data.class_names)
        if unknown:
            raise ConfigError(f"audit: canaries name classes not in the data: {sorted(unknown)}")
    canaries = list(canaries)
    m = len(canaries)
    planned = planned_releases(PrivacySettings.from_config(cfg))
    delta = planned.delta

    own_dir = workdir is None
    work = Path(tempfile.mkdtemp(prefix="augpe-audit-")) if own_dir else Path(workdir)  # type: ignore[arg-type]
    work.mkdir(parents=True, exist_ok=True)
    try:
        keep_idx = np.setdiff1d(np.arange(len(data)), held)
        data_path = work / "audit-data.PRIVATE.jsonl"
        _write_audit_data(data_path, cfg, data, keep_idx, canaries)
        (work / "canaries.PRIVATE.json").write_text(
            json.dumps(
                [{**asdict(c), "text": c.text} for c in canaries], indent=1, ensure_ascii=False
            ),
            encoding="utf-8",
        )
        acfg = cfg.model_copy(deep=True)
        acfg.data.path = str(data_path)
        acfg.data.format = "jsonl"
        acfg.data.max_records = None
        acfg.data.min_records_per_class = 1
        acfg.privacy.delta = delta
        acfg.embedding.cache_private = False
        acfg.output.dir = str(work / "run")
        acfg.output.private_dir = str(work / "run.PRIVATE")
        acfg.output.overwrite = True
        own_llm = llm is None
        if llm is None and embedder is None:
            llm, embedder = build_components(acfg, show_progress)  # as `augpe run` builds them
        elif llm is None:
            llm = build_llm(acfg, show_progress)  # the one factory: request cache, engine
        elif embedder is None:
            embedder = build_embedder(acfg, show_progress)  # the one factory, as in augpe run
        assert llm is not None and embedder is not None
        try:
            result = run(acfg, show_progress=show_progress, llm=llm, embedder=embedder)
        finally:
            if own_llm:
                llm.close()

        synthetic = [r["text"] for r in result.samples]
        included = np.array([c.included for c in canaries])
        raw_scores = {
            "nn_cosine": nn_cosine_scores(embedder, [c.text for c in canaries], synthetic),
            "ngram_secret": ngram_secret_scores(NgramModel(synthetic), canaries),
        }
        per_score = beta / len(raw_scores)  # Bonferroni over the scores
        results: dict[str, ScoreResult] = {}
        for name, s in raw_scores.items():
            b = one_run_bound(s, included, delta, per_score, k)
            results[name] = ScoreResult(
                auroc=auroc(s, included),
                tpr_at_fpr={f"{int(100 * f)}%": tpr_at_fpr(s, included, f) for f in FPR_TARGETS},
                eps_lower_bound=b.eps_lower_bound,
                k=b.k,
                guesses=b.guesses,
                correct=b.correct,
                beta=b.beta,
            )
        notes = [
            f"delta fixed before the coin flips: {delta:.3g}, {planned.delta_rule}",
        ]
        ks = [max(1, m // 4)] if k is None else ([int(k)] if isinstance(k, int) else list(k))
        k_max, level = max(ks), per_score / len(ks)
        ceiling = epsilon_lower_bound(m, 2 * k_max, 2 * k_max, delta, level)
        notes.append(
            f"ceiling: with m = {m} canaries and k = {k_max} guesses per side, even a perfect "
            f"attack shows at most eps = {ceiling:.2f}"
        )
        report = AuditReport(
            canaries=m,
            included=int(included.sum()),
            claimed_epsilon=result.ledger.epsilon(),
            target_epsilon=cfg.privacy.epsilon,
            delta=delta,
            beta=beta,
            scores=results,
            eps_lower_bound=max(r.eps_lower_bound for r in results.values()),
            synthetic_samples=len(synthetic),
            wall_seconds=round(time.perf_counter() - t0, 2),
            run_dir=str(result.run_dir) if keep else None,
            notes=notes,
        )
        if keep:
            (work / "audit-report.json").write_text(
                json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8"
            )
        return report
    finally:
        if not keep:
            if own_dir:
                shutil.rmtree(work, ignore_errors=True)
            else:
                for name in ("audit-data.PRIVATE.jsonl", "canaries.PRIVATE.json"):
                    (work / name).unlink(missing_ok=True)
                shutil.rmtree(work / "run", ignore_errors=True)
                shutil.rmtree(work / "run.PRIVATE", ignore_errors=True)
