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

    bounds.py    the one-run estimator (p-value, eps lower bound, guesses) and AUROC / TPR@FPR
    canaries.py  Canary, make_canaries: held-out prefixes + random secrets, fair coins
    scores.py    nn_cosine_scores, NgramModel, ngram_secret_scores: the attacker's two scores
    run.py       audit, AuditReport: insert, run once, score, bound
"""

from __future__ import annotations

from augpe.audit.bounds import (
    OneRunBound,
    auroc,
    epsilon_lower_bound,
    guesses_from_scores,
    one_run_bound,
    p_value_one_run,
    tpr_at_fpr,
)
from augpe.audit.canaries import Canary, make_canaries
from augpe.audit.run import FPR_TARGETS, SCORES, AuditReport, ScoreResult, audit
from augpe.audit.scores import NgramModel, ngram_secret_scores, nn_cosine_scores

__all__ = [
    "FPR_TARGETS",
    "SCORES",
    "AuditReport",
    "Canary",
    "NgramModel",
    "OneRunBound",
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
