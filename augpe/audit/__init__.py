"""Empirical privacy audit in one run (Steinke, Nasr & Jagielski, NeurIPS 2023, arXiv 2305.08846).

The ledger says what the run *claims* (eps, delta); the audit measures what an attacker who sees
only the released corpus can *show*. m canaries (an in-distribution prefix taken from a held-out
private record, then a high-entropy secret: random words and an alphanumeric code) are each put
into the private data with probability 1/2, the pipeline runs once, and every canary is scored
against the synthetic corpus:

  * `nn_cosine`: cosine similarity to its nearest synthetic sample, in the run's embedding space;
  * `ngram_secret`: how much a smoothed word 3-gram model fit to the synthetic corpus prefers the
    canary's secret given its context over a unigram model (mean log-likelihood ratio per token).

From each score the attacker guesses "in" for the k highest and "out" for the k lowest canaries
(abstaining on the rest). For an (eps, delta)-DP run the number of correct guesses is, up to a
delta term, dominated by Binomial(r, e^eps / (1 + e^eps)) (Theorem 3 / Corollary 5.4 of the
paper); the audit's lower bound is the largest eps that this rejects at level beta.

Multiple comparisons: k is fixed before the run (default m // 4 per side) and each of the two
scores is tested at beta / 2 (Bonferroni), so the reported maximum holds at level beta. A list
of k values may be given instead; each is then tested at beta / (2 * len(ks)).

Honest limits: the bound is a *lower* bound. A valid run gives eps_lb <= eps with probability
>= 1 - beta, whatever the scores; a small bound does not prove the run is private, and with
m ~ 100 canaries even a perfect attack cannot show more than eps ~ 3-4.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import string
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import binom, rankdata

from augpe.config import Config
from augpe.records.data import PrivateData, load_private_data
from augpe.embed import Embedder
from augpe.errors import ConfigError
from augpe.llm.base import LLM
from augpe.privacy import default_delta

log = logging.getLogger("augpe")

__all__ = [
    "AuditReport",
    "Canary",
    "NgramModel",
    "ScoreResult",
    "audit",
    "auroc",
    "epsilon_lower_bound",
    "guesses_from_scores",
    "make_canaries",
    "ngram_secret_scores",
    "nn_cosine_scores",
    "one_run_bound",
    "p_value_one_run",
    "tpr_at_fpr",
]

SCORES = ("nn_cosine", "ngram_secret")
FPR_TARGETS = (0.01, 0.05)


# =============================================================================================
# The one-run estimator
# =============================================================================================
def p_value_one_run(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """P[>= v correct out of r guesses] for an (eps, delta)-DP run with m random canaries.

    Theorem 3 of the paper (Algorithm 2 / App. D for delta > 0): for all v,
        P[W >= v] <= P[W' >= v] + 2 m delta * max_{i=1..v} P[v - i <= W' < v] / i,
    W' ~ Binomial(r, q), q = e^eps / (1 + e^eps): the accuracy of eps-DP randomised response.
    """
    if not (0 <= v <= r <= m):
        raise ValueError(f"need 0 <= v <= r <= m, got v={v}, r={r}, m={m}")
    if not (eps >= 0.0 and 0.0 <= delta <= 1.0):
        raise ValueError(f"need eps >= 0 and 0 <= delta <= 1, got eps={eps}, delta={delta}")
    if v == 0:
        return 1.0
    q = 1.0 / (1.0 + math.exp(-eps)) if eps < 700 else 1.0
    tail = float(binom.sf(v - 1, r, q))  # P[W' >= v]
    if delta == 0.0:
        return min(tail, 1.0)
    below = binom.pmf(np.arange(v - 1, -1, -1), r, q)  # P[W' = v - i], i = 1..v
    alpha = float(np.max(np.cumsum(below) / np.arange(1, v + 1)))
    return min(tail + 2.0 * m * delta * alpha, 1.0)


def epsilon_lower_bound(m: int, r: int, v: int, delta: float, beta: float = 0.05) -> float:
    """The largest eps the audit rejects at level beta: p_value_one_run(eps) < beta below it.

    Bisection as in App. D of the paper; the low end of the final bracket is returned, so the
    bound errs small (an audit must never overstate leakage).
    """
    if not 0.0 < beta < 1.0:
        raise ValueError(f"beta must be in (0, 1), got {beta}")
    if p_value_one_run(m, r, v, 0.0, delta) >= beta:
        return 0.0
    lo, hi = 0.0, 1.0
    while p_value_one_run(m, r, v, hi, delta) < beta:
        lo, hi = hi, hi * 2.0
        if hi > 1e4:  # only reachable with delta = 0 and r = v huge
            return lo
    for _ in range(40):  # bracket width / 2^40: far below any printed digit
        mid = 0.5 * (lo + hi)
        if p_value_one_run(m, r, v, mid, delta) < beta:
            lo = mid
        else:
            hi = mid
    return lo


def guesses_from_scores(scores: np.ndarray, k_in: int, k_out: int, seed: int = 0) -> np.ndarray:
    """+1 ("in") for the k_in highest scores, -1 ("out") for the k_out lowest, 0 (abstain) else.

    Ties are broken by a seeded random order, never by canary index.
    """
    s = np.asarray(scores, dtype=np.float64)
    m = s.size
    if k_in < 0 or k_out < 0 or k_in + k_out > m:
        raise ValueError(f"need k_in, k_out >= 0 and k_in + k_out <= m={m}, got {k_in}, {k_out}")
    order = np.lexsort((np.random.default_rng(seed).random(m), s))  # ascending score
    g = np.zeros(m, dtype=np.int64)
    if k_out:
        g[order[:k_out]] = -1
    if k_in:
        g[order[m - k_in :]] = 1
    return g


@dataclass(frozen=True)
class OneRunBound:
    eps_lower_bound: float
    k: int  # guesses per side
    guesses: int  # r = 2k
    correct: int  # v
    beta: float  # the level this k was tested at (after corrections)


def one_run_bound(
    scores: np.ndarray,
    included: np.ndarray,
    delta: float,
    beta: float = 0.05,
    k: int | Sequence[int] | None = None,
) -> OneRunBound:
    """The one-run eps lower bound of one score. k: guesses per side, fixed in advance
    (default m // 4); a list of k values is searched with a Bonferroni correction (beta / len)."""
    inc = np.asarray(included, dtype=bool)
    m = inc.size
    ks = (
        [max(1, m // 4)]
        if k is None
        else ([int(k)] if isinstance(k, (int, np.integer)) else list(k))
    )
    if not ks or any(kk < 1 or 2 * kk > m for kk in ks):
        raise ValueError(f"every k must satisfy 1 <= k <= m/2 = {m / 2}, got {ks}")
    level = beta / len(ks)
    truth = np.where(inc, 1, -1)
    best: OneRunBound | None = None
    for kk in ks:
        g = guesses_from_scores(scores, kk, kk)
        v = int(np.sum(g == truth))
        lb = epsilon_lower_bound(m, 2 * kk, v, delta, level)
        if best is None or lb > best.eps_lower_bound:
            best = OneRunBound(lb, kk, 2 * kk, v, level)
    assert best is not None
    return best


# ---- membership-inference metrics ------------------------------------------------------------
def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney; ties count 1/2). nan if one class is empty."""
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(np.asarray(scores, dtype=np.float64))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def tpr_at_fpr(scores: np.ndarray, labels: np.ndarray, fpr: float) -> float:
    """The highest TPR of a threshold rule "in iff score >= t" whose FPR is <= fpr.

    With n negatives the FPR moves in steps of 1/n: below 1/n this is the TPR at zero false
    positives."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    best = 0.0
    for t in np.unique(s):
        pred = s >= t
        if (pred & ~y).sum() / n_neg <= fpr + 1e-12:
            best = max(best, float((pred & y).sum() / n_pos))
    return best


# =============================================================================================
# Canaries
# =============================================================================================
@dataclass(frozen=True)
class Canary:
    """One audit record. `included` is the coin flip the attacker has to guess."""

    id: str
    prefix: str
    secret: str
    class_name: str
    included: bool

    @property
    def text(self) -> str:
        return f"{self.prefix} {self.secret}"


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def make_canaries(
    data: PrivateData,
    m: int,
    rng: np.random.Generator,
    prefix_words: int = 12,
    secret_words: int = 5,
    code_chars: int = 8,
) -> tuple[list[Canary], np.ndarray]:
    """m canaries and the indices of the private records held out to give their prefixes.

    Prefix: the first `prefix_words` words of a random private record (in distribution; that
    record is removed from the audit data, so the prefix is not duplicated). The canary's class
    is that record's class, so classes are drawn with the data's class frequencies. Secret:
    `secret_words` random words from the data's vocabulary plus a random alphanumeric code:
    about 5 * log2(V) + 41 bits, so a secret is never produced by chance.
    """
    n = len(data)
    counts = np.bincount(data.class_ids, minlength=data.num_classes)
    if m < 2:
        raise ConfigError(f"audit: need at least 2 canaries, got {m}")
    if m > n - data.num_classes:
        raise ConfigError(
            f"audit: {m} canaries need more than the {n} private records to take prefixes from"
        )
    # Hold out records at random, keeping at least one record per class in the audit data.
    held: list[int] = []
    left = counts.copy()
    for i in rng.permutation(n):
        c = int(data.class_ids[i])
        if left[c] > 1:
            held.append(int(i))
            left[c] -= 1
            if len(held) == m:
                break
    if len(held) < m:
        raise ConfigError(f"audit: cannot hold out {m} records and keep every class")
    vocab_counts = Counter(
        t for text in data.texts for t in _tokens(text) if t.isalpha() and 4 <= len(t) <= 10
    )
    vocab = (
        sorted(w for w, c in vocab_counts.items() if c >= 2) or sorted(vocab_counts) or ["canary"]
    )
    alphabet = string.ascii_uppercase + string.digits
    include = rng.random(m) < 0.5
    out = []
    for j, i in enumerate(held):
        words = data.texts[i].split()
        prefix = " ".join(words[:prefix_words]).rstrip(".,;:!?")
        secret_ws = [vocab[int(x)] for x in rng.integers(len(vocab), size=secret_words)]
        code = "".join(alphabet[int(x)] for x in rng.integers(len(alphabet), size=code_chars))
        secret = " ".join(secret_ws) + f" {code}."
        out.append(
            Canary(
                f"canary-{j:04d}",
                prefix,
                secret,
                data.class_names[int(data.class_ids[i])],
                bool(include[j]),
            )
        )
    return out, np.asarray(held, dtype=np.int64)


# =============================================================================================
# Scores: what an attacker reads off the released corpus
# =============================================================================================
def nn_cosine_scores(
    embedder: Embedder, canaries: Sequence[str], synthetic: Sequence[str]
) -> np.ndarray:
    """Cosine similarity of each canary to its nearest synthetic sample."""
    if not synthetic:
        return np.zeros(len(canaries))
    a = np.asarray(embedder.encode(list(canaries), desc="embed canaries"), dtype=np.float64)
    b = np.asarray(embedder.encode(list(synthetic), desc="embed synthetic"), dtype=np.float64)
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    best = np.full(a.shape[0], -1.0)
    for start in range(0, b.shape[0], 4096):
        best = np.maximum(best, (a @ b[start : start + 4096].T).max(axis=1))
    return best


class NgramModel:
    """Interpolated Witten-Bell word n-gram model (add-one unigram base, one unknown token).

    Witten-Bell needs no tuned constant: a context that was followed by many different words
    gives more weight to the lower order, which is what a corpus of paraphrases looks like.
    """

    BOS = "<s>"

    def __init__(self, texts: Sequence[str], n: int = 3) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = n
        self.unigram: Counter[str] = Counter()
        self.follow: list[dict[tuple[str, ...], Counter[str]]] = [
            defaultdict(Counter) for _ in range(n)
        ]
        for text in texts:
            toks = [self.BOS] * (n - 1) + _tokens(text)
            for i in range(n - 1, len(toks)):
                w = toks[i]
                self.unigram[w] += 1
                for order in range(1, n):
                    self.follow[order][tuple(toks[i - order : i])][w] += 1
        self.total = sum(self.unigram.values())
        self.vocab = len(self.unigram) + 1  # + one unknown word

    def unigram_logprob(self, w: str) -> float:
        return math.log((self.unigram.get(w, 0) + 1) / (self.total + self.vocab))

    def logprob(self, w: str, context: Sequence[str]) -> float:
        ctx = ([self.BOS] * (self.n - 1) + list(context))[-(self.n - 1) :] if self.n > 1 else []
        p = math.exp(self.unigram_logprob(w))
        for order in range(1, self.n):
            h = tuple(ctx[len(ctx) - order :])
            follow = self.follow[order].get(h)
            if not follow:
                continue  # unseen context: the lower-order estimate stands
            c_h, types = sum(follow.values()), len(follow)
            p = (follow.get(w, 0) + types * p) / (c_h + types)
        return math.log(p)


def ngram_secret_scores(model: NgramModel, canaries: Sequence[Canary]) -> np.ndarray:
    """Mean over the secret's tokens of log P_ngram(w | context) - log P_unigram(w).

    The unigram baseline cancels how common each random secret word is; what is left is how
    much the corpus has seen these words *in this order*, which only a leak explains.
    """
    out = np.zeros(len(canaries))
    for j, c in enumerate(canaries):
        ctx = _tokens(c.prefix)
        secret = _tokens(c.secret)
        total = 0.0
        for w in secret:
            total += model.logprob(w, ctx) - model.unigram_logprob(w)
            ctx.append(w)
        out[j] = total / max(1, len(secret))
    return out


# =============================================================================================
# The audit
# =============================================================================================
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

    delta is fixed *before* the coin flips (cfg.privacy.delta, or 1/(N ln N) with N the records of
    the user's data), so sigma does not depend on which canaries are in. Everything written
    (data copy, canaries, run, PRIVATE folder) goes to `workdir` (a temp folder, deleted unless
    keep=True). `canaries`, `llm`, `embedder`: bring your own (tests do).
    """
    from augpe.runner.compose import build_components, run

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
    delta = cfg.privacy.delta or default_delta(len(data))

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
            from augpe.llm import make_llm

            llm = make_llm(acfg.generation, show_progress=show_progress)
        elif embedder is None:
            from augpe.embed import SentenceTransformerEmbedder

            e = acfg.embedding
            embedder = SentenceTransformerEmbedder(
                e.model, e.device, e.batch_size, show_progress=show_progress
            )
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
            f"delta fixed before the coin flips: {delta:.3g}"
            + (" (privacy.delta)" if cfg.privacy.delta else f" = 1/(N ln N), N = {len(data)}"),
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
