"""Next-word prediction (the PubMed protocol): train a small LM on the corpus, score it on real text.

The papers train bert-mini / bert-small as causal LMs on the synthetic abstracts and report
next-token accuracy on real ones. Here: any causal LM or BERT-style model (a BERT is switched to
decoder mode, so it attends only to the left), trained from its initial weights for `epochs`,
scored on real text by next-token accuracy and perplexity. Targets are the real text's tokens;
special tokens ([CLS], [SEP], padding) are never targets. `model="tiny"` is a random-init small
BERT with the offline MiniLM tokenizer (CPU smoke runs, tests).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from augpe.errors import BackendError
from augpe.evaluate._hf import (
    TINY,
    batches,
    load_tokenizer,
    pick_device,
    require_transformers,
    seed_everything,
)


@dataclass
class LMSettings:
    """lr None: 5e-4 for 'tiny' (from scratch), 1e-4 for a pretrained model."""

    model: str = field(
        default=TINY,
        metadata={"flag": "--lm", "help": "next-word LM: 'tiny' (offline) or a HF name or path"},
    )
    epochs: int = field(default=3, metadata={"flag": "--epochs", "help": "epochs"})
    lr: float | None = field(
        default=None, metadata={"flag": "--lr", "type": float, "help": "learning rate"}
    )
    batch_size: int = field(
        default=16, metadata={"flag": "--lm-batch-size", "help": "next-word LM: texts per step"}
    )
    max_length: int = field(
        default=128, metadata={"flag": "--max-length", "help": "tokens per text"}
    )
    seed: int = field(default=0, metadata={"flag": "--lm-seed", "help": "next-word LM: seed"})
    device: str | None = field(default=None, metadata={"flag": "--device", "help": "cpu / cuda"})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _build_lm(model: str, tok: Any, max_length: int) -> Any:
    transformers = require_transformers()
    if model == TINY:
        from augpe.evaluate._hf import tiny_bert_config

        cfg = tiny_bert_config(len(tok), max_length, is_decoder=True, pad_token_id=tok.pad_token_id)
        return transformers.BertLMHeadModel(cfg)
    try:
        cfg = transformers.AutoConfig.from_pretrained(model)
        if getattr(cfg, "model_type", "") in ("bert", "roberta", "electra", "bert-generation"):
            cfg.is_decoder = True  # BERT-style encoder trained as a causal LM, as in the papers
        return transformers.AutoModelForCausalLM.from_pretrained(model, config=cfg)
    except Exception as err:  # noqa: BLE001
        raise BackendError(f"cannot load '{model}' as a causal LM: {err}") from None


def _target_mask(input_ids: Any, attention: Any, special: list[int]) -> Any:
    """Positions whose NEXT token is a real (non-special, non-padding) token."""
    import torch

    nxt = input_ids[:, 1:]
    mask = attention[:, 1:].bool()
    if special:
        mask &= ~torch.isin(nxt, torch.tensor(special, device=nxt.device))
    return mask


def next_word_prediction(
    train_texts: Sequence[str],
    test_texts: Sequence[str],
    settings: LMSettings | None = None,
) -> dict[str, Any]:
    """Train on `train_texts`, return next-token accuracy and perplexity on `test_texts`."""
    import torch
    import torch.nn.functional as F

    s = settings or LMSettings()
    if not train_texts:
        raise ValueError("next_word_prediction: empty training corpus")
    if not test_texts:
        raise ValueError("next_word_prediction: empty test corpus")
    transformers = require_transformers()
    seed_everything(s.seed)
    rng = np.random.default_rng(s.seed)
    device = pick_device(s.device)
    tok = load_tokenizer(s.model)
    special = sorted({int(i) for i in tok.all_special_ids})
    model = _build_lm(s.model, tok, s.max_length).to(device)
    lr = s.lr if s.lr is not None else (5e-4 if s.model == TINY else 1e-4)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = s.epochs * math.ceil(len(train_texts) / s.batch_size)
    sched = transformers.get_linear_schedule_with_warmup(opt, int(0.06 * steps), max(steps, 1))

    def encode(texts: list[str]) -> Any:
        return tok(
            texts, truncation=True, max_length=s.max_length, padding=True, return_tensors="pt"
        ).to(device)

    def token_losses(enc: Any) -> tuple[Any, Any, Any]:
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[
            :, :-1
        ]
        target = enc["input_ids"][:, 1:]
        mask = _target_mask(enc["input_ids"], enc["attention_mask"], special)
        nll = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), target.reshape(-1), reduction="none"
        )
        return nll.view_as(target), (logits.argmax(-1) == target), mask

    t0 = time.perf_counter()
    train_tokens = 0
    for _ in range(s.epochs):
        model.train()
        for b in batches(len(train_texts), s.batch_size, rng):
            enc = encode([train_texts[i] for i in b])
            nll, _, mask = token_losses(enc)
            n = mask.sum()
            if n == 0:
                continue
            loss = (nll * mask).sum() / n
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            train_tokens += int(n)
    train_seconds = time.perf_counter() - t0
    model.eval()
    total_nll, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for b in batches(len(test_texts), s.batch_size * 2):
            nll, hit, mask = token_losses(encode([test_texts[i] for i in b]))
            total_nll += float((nll * mask).sum())
            correct += int((hit & mask).sum())
            count += int(mask.sum())
    if count == 0:
        raise ValueError("next_word_prediction: the test texts have no tokens to predict")
    mean_nll = total_nll / count
    return {
        "accuracy": round(correct / count, 5),
        "perplexity": round(math.exp(min(mean_nll, 700.0)), 3),
        "mean_nll": round(mean_nll, 5),
        "eval_tokens": count,
        "train_tokens_seen": train_tokens,
        "n_train": len(train_texts),
        "n_test": len(test_texts),
        "model": s.model,
        "device": device,
        "settings": s.to_dict(),
        "seconds": round(time.perf_counter() - t0, 2),
        "train_seconds": round(train_seconds, 2),
    }
