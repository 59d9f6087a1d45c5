"""Downstream utility: train a classifier on one corpus, test it on real text, one label column at a time.

Two tiers:
- fast (`linear_probe`): frozen sentence embeddings + logistic regression. Seconds on a CPU; the
  number printed after every run and used by the benchmark runner.
- papers' (`finetune_classifier`): fine-tune an encoder (roberta-base in the papers) end to end,
  pick the best epoch on a validation split, mean +- std over seeds. GPU when present.

A third learner, the bag-of-words tier that shares no feature space with the pipeline, is in
`augpe.evaluate.independent`; the scores all of them report are in `augpe.evaluate.scores`.

Every tier handles the awkward cases the same way, and says so in the result instead of crashing:
test labels never seen in training count as errors (listed under "unseen_test_labels"); a
training corpus with a single class predicts that class everywhere ("degenerate").
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from augpe.evaluate._hf import (
    TINY,
    batches,
    load_tokenizer,
    model_path,
    pick_device,
    require_transformers,
    seed_everything,
)
from augpe.evaluate.scores import auc as _auc
from augpe.evaluate.scores import check_weights as _weights
from augpe.evaluate.scores import degenerate as _degenerate
from augpe.evaluate.scores import label_report as _label_report
from augpe.evaluate.scores import majority_accuracy  # noqa: F401 - re-exported
from augpe.evaluate.scores import scores as _scores

log = logging.getLogger("augpe")


def linear_probe(
    train_emb: np.ndarray,
    train_y: Sequence[str],
    test_emb: np.ndarray,
    test_y: Sequence[str],
    C: float | None = None,
    weights: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Fast tier: logistic regression on L2-normalised frozen embeddings.

    `C=None` picks the inverse regularisation from `PROBE_CS` by stratified k-fold cross-validation
    on the TRAINING corpus only (the real test split is never looked at): a fixed C=1 on a few dozen
    unit vectors regularises so hard that every corpus collapses to the majority class.
    `weights`: one non-negative weight per training text (a corpus's `weight` column), used in
    the fit and in the cross-validation's fits.
    """
    from sklearn.linear_model import LogisticRegression

    if len(train_y) == 0:
        raise ValueError("linear_probe: empty training set")
    base = _label_report(train_y, test_y)
    base["tier"] = "fast"
    if (deg := _degenerate(train_y, test_y, base)) is not None:
        return deg
    t0 = time.perf_counter()

    def unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    X, y = unit(train_emb), list(train_y)
    w = _weights(weights, len(y))
    chosen = C if C is not None else choose_C(X, y, weights=w)
    clf = LogisticRegression(C=chosen, max_iter=2000)
    clf.fit(X, y, sample_weight=w)
    pred = clf.predict(unit(test_emb)).tolist()
    return {
        **base,
        **_scores(pred, test_y),
        "auc": _auc(clf, unit(test_emb), test_y),
        "C": chosen,
        "C_source": "given" if C is not None else "cv",
        "seconds": round(time.perf_counter() - t0, 3),
    }


PROBE_CS = (0.1, 1.0, 10.0, 100.0)
FALLBACK_C = 10.0  # when a class has too few samples to cross-validate


def choose_C(
    X: np.ndarray,
    y: Sequence[str],
    folds: int = 5,
    seed: int = 0,
    weights: np.ndarray | None = None,
) -> float:
    """The C of PROBE_CS with the best mean held-out accuracy (ties: the smaller C), on the
    training set; with `weights`, the fits and the held-out accuracy are weighted."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    k = min(folds, min(Counter(y).values()))
    if k < 2:
        return FALLBACK_C
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    ya = np.asarray(y)
    w = np.ones(len(ya)) if weights is None else weights
    splits = list(cv.split(X, ya))

    def held_out(c: float) -> float:
        accs = []
        for tr, te in splits:
            clf = LogisticRegression(C=c, max_iter=2000).fit(X[tr], ya[tr], sample_weight=w[tr])
            hit = clf.predict(X[te]) == ya[te]
            accs.append(float(np.average(hit, weights=w[te])) if w[te].sum() > 0 else 0.0)
        return float(np.mean(accs))

    scores = [held_out(c) for c in PROBE_CS]
    return PROBE_CS[int(np.argmax(scores))]  # argmax returns the first (smallest C) on ties


# ---- papers' tier ------------------------------------------------------------------------------
@dataclass
class FinetuneSettings:
    """Fine-tuning of the papers' tier. lr None: 3e-5 for a pretrained model (the papers' value), 1e-3 for
    'tiny'. The papers ran 10 epochs at max_length 512; the defaults here are cheaper."""

    model: str = field(
        default="roberta-base",
        metadata={
            "flag": "--encoder",
            "help": "papers' tier model: HF name or path; 'minilm' = the shipped MiniLM encoder "
            "fine-tuned end to end (offline, CPU-friendly; starts from the vote space); "
            "'tiny' = a small untrained BERT (smoke runs)",
        },
    )
    epochs: int = field(default=3, metadata={"flag": "--epochs", "help": "papers' tier epochs"})
    lr: float | None = field(
        default=None,
        metadata={"flag": "--lr", "type": float, "help": "learning rate (default: per model)"},
    )
    batch_size: int = field(default=32, metadata={"flag": "--batch-size", "help": "texts per step"})
    max_length: int = field(
        default=128, metadata={"flag": "--max-length", "help": "tokens per text (papers: 512)"}
    )
    seeds: tuple[int, ...] = field(
        default=(0, 1, 2),
        metadata={
            "flag": "--seeds",
            "type": int,
            "default": 3,
            "to": lambda n: tuple(range(n)),
            "help": "papers' tier seeds 0..N-1 (mean +- std)",
        },
    )
    val_fraction: float = field(
        default=0.1,
        metadata={
            "flag": "--val-fraction",
            "help": "share of each training corpus held out "
            "to pick the best epoch (without --real-val)",
        },
    )
    device: str | None = field(
        default=None,
        metadata={"flag": "--device", "help": "cpu / cuda (default: cuda when available)"},
    )
    weight_decay: float = field(
        default=0.01, metadata={"flag": "--weight-decay", "help": "AdamW weight decay"}
    )
    warmup: float = field(
        default=0.06, metadata={"flag": "--warmup", "help": "share of steps of linear warm-up"}
    )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seeds"] = list(self.seeds)
        return d


def _split_validation(
    n: int, y: Sequence[str], fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified hold-out of `fraction` of the training corpus (each class keeps >= 1 training text)."""
    val: list[int] = []
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(y):
        by_class.setdefault(label, []).append(i)
    for idx in by_class.values():
        k = math.floor(len(idx) * fraction)
        if k and len(idx) - k >= 1:
            val.extend(rng.choice(idx, size=k, replace=False).tolist())
    val_set = set(val)
    train = np.array([i for i in range(n) if i not in val_set], dtype=np.int64)
    return train, np.array(sorted(val_set), dtype=np.int64)


def _build_classifier(model: str, num_labels: int, tokenizer: Any, max_length: int) -> Any:
    transformers = require_transformers()
    if model == TINY:
        cfg = _tiny_cfg(tokenizer, max_length, num_labels=num_labels)
        return transformers.BertForSequenceClassification(cfg)
    from augpe.errors import BackendError

    try:
        return transformers.AutoModelForSequenceClassification.from_pretrained(
            model_path(model), num_labels=num_labels, ignore_mismatched_sizes=True
        )
    except Exception as err:  # noqa: BLE001
        raise BackendError(f"cannot load classifier model '{model}': {err}") from None


def _tiny_cfg(tokenizer: Any, max_length: int, **extra: Any) -> Any:
    from augpe.evaluate._hf import tiny_bert_config

    return tiny_bert_config(
        len(tokenizer), max_length, pad_token_id=tokenizer.pad_token_id, **extra
    )


def _encode(tok: Any, texts: Sequence[str], idx: Any, max_length: int, device: str) -> Any:
    """The texts at `idx`, tokenised, truncated, padded, on `device`."""
    return tok(
        [texts[i] for i in idx],
        truncation=True,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    ).to(device)


def _predict(
    model: Any, tok: Any, texts: Sequence[str], s: FinetuneSettings, device: str
) -> np.ndarray:
    import torch

    model.eval()
    out: list[np.ndarray] = []
    with torch.no_grad():
        for b in batches(len(texts), s.batch_size * 2):
            enc = _encode(tok, texts, b, s.max_length, device)
            out.append(model(**enc).logits.argmax(-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def finetune_classifier(
    train_texts: Sequence[str],
    train_y: Sequence[str],
    test_texts: Sequence[str],
    test_y: Sequence[str],
    settings: FinetuneSettings | None = None,
    val_texts: Sequence[str] | None = None,
    val_y: Sequence[str] | None = None,
    weights: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Papers' tier: fine-tune `settings.model`, best epoch by validation accuracy, mean +- std over seeds.

    `weights` (a `soft` corpus): the training loss is the weight-averaged cross-entropy.

    Validation: the given (real) validation split, else a stratified `val_fraction` of the training
    corpus. The test accuracy reported for a seed is the one at its best validation epoch.
    """
    import torch

    s = settings or FinetuneSettings()
    if len(train_y) == 0:
        raise ValueError("finetune_classifier: empty training set")
    w_all = _weights(weights, len(train_y))
    base = _label_report(train_y, test_y)
    base.update({"tier": "paper", "model": s.model, "settings": s.to_dict()})
    if (deg := _degenerate(train_y, test_y, base)) is not None:
        return deg
    transformers = require_transformers()
    device = pick_device(s.device)
    tok = load_tokenizer(s.model)
    classes = sorted(set(train_y))
    cid = {c: i for i, c in enumerate(classes)}
    lr = s.lr if s.lr is not None else (1e-3 if s.model == TINY else 3e-5)
    t0 = time.perf_counter()
    per_seed: list[dict[str, Any]] = []
    for seed in s.seeds:
        seed_everything(seed)
        rng = np.random.default_rng(seed)
        if val_texts is not None and val_y is not None:
            tr_idx = np.arange(len(train_texts))
            v_texts, v_y = list(val_texts), list(val_y)
        else:
            tr_idx, va_idx = _split_validation(len(train_texts), train_y, s.val_fraction, rng)
            v_texts, v_y = (
                [train_texts[i] for i in va_idx.tolist()],
                [train_y[i] for i in va_idx.tolist()],
            )
        tr_texts = [train_texts[i] for i in tr_idx.tolist()]
        tr_lab = torch.tensor([cid[train_y[i]] for i in tr_idx.tolist()])
        tr_w = torch.ones(len(tr_idx)) if w_all is None else torch.tensor(w_all[tr_idx]).float()
        model = _build_classifier(s.model, len(classes), tok, s.max_length).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=s.weight_decay)
        steps = s.epochs * math.ceil(len(tr_texts) / s.batch_size)
        sched = transformers.get_linear_schedule_with_warmup(
            opt, int(s.warmup * steps), max(steps, 1)
        )
        history: list[dict[str, float | None]] = []
        for epoch in range(1, s.epochs + 1):
            model.train()
            for b in batches(len(tr_texts), s.batch_size, rng):
                enc = _encode(tok, tr_texts, b, s.max_length, device)
                logits = model(**enc).logits
                per_text = torch.nn.functional.cross_entropy(
                    logits, tr_lab[b].to(device), reduction="none"
                )
                w = tr_w[b].to(device)
                loss = (per_text * w).sum() / w.sum().clamp_min(1e-12)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad()
            val_acc = None
            if v_texts:
                vp = _predict(model, tok, v_texts, s, device)
                val_acc = float(np.mean([classes[p] == y for p, y in zip(vp, v_y)]))
            tp = [classes[p] for p in _predict(model, tok, test_texts, s, device)]
            history.append({"epoch": epoch, "val_accuracy": val_acc, **_scores(tp, test_y)})
        # best epoch by validation (earliest on ties); without validation, the last epoch
        best = (
            max(
                history,
                key=lambda h: (
                    h["val_accuracy"] if h["val_accuracy"] is not None else -1.0,
                    -float(h["epoch"] or 0),
                ),
            )
            if v_texts
            else history[-1]
        )
        per_seed.append(
            {
                "seed": seed,
                "best_epoch": best["epoch"],
                "accuracy": best["accuracy"],
                "macro_f1": best["macro_f1"],
                "balanced_accuracy": best["balanced_accuracy"],
                "val_accuracy": best["val_accuracy"],
                "history": history,
            }
        )
        del model, opt
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    accs = np.array([p["accuracy"] for p in per_seed], dtype=np.float64)
    f1s = np.array([p["macro_f1"] for p in per_seed], dtype=np.float64)
    bals = np.array([p["balanced_accuracy"] for p in per_seed], dtype=np.float64)
    return {
        **base,
        "accuracy": round(float(accs.mean()), 5),
        "accuracy_std": round(float(accs.std(ddof=0)), 5),
        "macro_f1": round(float(f1s.mean()), 5),
        "balanced_accuracy": round(float(bals.mean()), 5),
        "validation": "given"
        if val_texts is not None
        else f"{s.val_fraction:.0%} of the training corpus",
        "device": device,
        "per_seed": per_seed,
        "seconds": round(time.perf_counter() - t0, 2),
    }
