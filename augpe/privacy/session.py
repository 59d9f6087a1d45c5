"""A run's privacy session: its ledger and secret, opened fresh or proven to be the run resumed,
and the releases made before the loop (class counts, keywords, lengths) and the one made after it
(class centroids). Every sigma comes from `augpe.privacy.plan.planned_releases`, priced from the
settings before any private data is read.

Everything here is privacy-critical and reads the private data only through the histograms of
`augpe.privacy.vote` / `keywords` / `lengths` / `centroids`, each handed to the mechanism, which
noises and books it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augpe.errors import ConfigError
from augpe.privacy.centroids import class_embedding_sums
from augpe.privacy.keywords import (
    keyword_histogram,
    public_rarity,
    public_vocabulary,
    select_keywords,
)
from augpe.privacy.ledger import GaussianRelease, Ledger
from augpe.privacy.lengths import LENGTH_EDGES, LengthSampler, length_histogram
from augpe.privacy.mechanism import GaussianMechanism, RunSecret
from augpe.privacy.plan import PlannedReleases, PrivacySettings
from augpe.privacy.vote import class_histogram
from augpe.records.data import PrivateData
from augpe.records.sample import Sample

log = logging.getLogger("augpe")

__all__ = ["ReleasePlan", "VoteReleases", "open_mechanism", "plan_releases", "release_centroids"]


def open_mechanism(
    settings: PrivacySettings,
    planned: PlannedReleases,
    ledger_path: Path,
    state_dir: Path,
    private_dir: Path,
    data: PrivateData,
    *,
    resume: bool,
    user_seed: int | None,
) -> GaussianMechanism:
    """A fresh run's new ledger and secret, or a resumed run's own after proving it is that run
    (same nonce record in the PRIVATE folder, same data, same privacy settings)."""
    if resume and ledger_path.is_file():
        ledger = Ledger.load(ledger_path)
        diff = settings.differences(ledger.settings)
        if diff:
            raise ConfigError(
                "--resume: the privacy settings differ from the stored run's ("
                + "; ".join(diff)
                + "); a resume must continue the same run: start a fresh one instead"
            )
        secret = RunSecret.load(private_dir, ledger.run_nonce, data.fingerprint())
        return GaussianMechanism(ledger, ledger_path, state_dir, secret)
    if resume:  # killed before its ledger existed: nothing was drawn, start it afresh
        log.info("--resume: no ledger yet in %s; nothing was released, starting the run", state_dir)
    secret = RunSecret.new(private_dir, data.fingerprint(), user_seed)
    if secret.user_seed:
        log.warning(
            "privacy.noise_seed is set: anyone who knows it can subtract the noise (tests only)"
        )
    ledger = Ledger(
        delta=planned.delta,
        target_epsilon=settings.epsilon,
        neighbouring=settings.neighbouring,
        delta_rule=planned.delta_rule,
        label_set=settings.label_set,
        run_nonce=secret.nonce,
        settings=settings.to_dict(),
        noise_seed_rule="set by the user (privacy.noise_seed): NOT secret, tests only"
        if secret.user_seed
        else "fresh OS entropy per run, kept in the PRIVATE folder",
    )
    ledger.assert_within_target(planned.all())  # the whole plan, priced before any draw
    ledger.save(ledger_path)
    return GaussianMechanism(ledger, ledger_path, state_dir, secret)


@dataclass(frozen=True)
class ReleasePlan:
    """What the releases before the votes gave, and the votes planned after them."""

    delta: float
    noisy_counts: np.ndarray | None  # class counts, when class_counts is dp
    keywords: list[list[str]] | None  # per class, when keywords are released
    votes: list[GaussianRelease]
    centroids: GaussianRelease | None = None  # drawn after the loop, by `release_centroids`
    lengths: LengthSampler | None = None  # RANDOM API target lengths, when lengths are released


def plan_releases(
    planned: PlannedReleases,
    data: PrivateData,
    mechanism: GaussianMechanism,
    keywords_top: int,
    keywords_per_record: int | None = None,
    keyword_selection: str = "frequent",
) -> ReleasePlan:
    """The releases before the votes (class counts, keywords, lengths), at their planned sigmas.
    Keywords: `keywords_top` per class, each record counting its `keywords_per_record` rarest
    words, chosen by `keyword_selection` (`augpe.privacy.keywords`)."""
    noisy = None
    if planned.counts is not None:
        noisy = mechanism.release(
            planned.counts,
            lambda: class_histogram(data.class_ids, data.num_classes, data.user_ids),
            file="class_counts.json",
            tag=data.class_names,
        )
    keywords = None
    if (kw := planned.keywords) is not None:
        vocab = public_vocabulary()
        noisy_kw = mechanism.release(
            kw,
            lambda: keyword_histogram(
                data.texts,
                data.class_ids,
                data.num_classes,
                vocab,
                data.user_ids,
                per_record=keywords_per_record,
                rarity=public_rarity(),
            ),
            file="keywords.json",
            tag={"classes": data.class_names, "vocabulary": len(vocab)},
        )
        keywords = select_keywords(
            noisy_kw,
            data.num_classes,
            vocab,
            kw.sigma,
            keywords_top,
            discriminative=keyword_selection == "discriminative",
        )
    lengths = None
    if (ln := planned.lengths) is not None:
        noisy_ln = mechanism.release(
            ln,
            lambda: length_histogram(data.texts, data.class_ids, data.num_classes, data.user_ids),
            file="lengths.json",
            tag={"classes": data.class_names, "edges": list(LENGTH_EDGES)},
        )
        lengths = LengthSampler(noisy_ln, data.num_classes, ln.sigma)
    return ReleasePlan(planned.delta, noisy, keywords, planned.votes, planned.centroids, lengths)


def release_centroids(
    event: GaussianRelease,
    mechanism: GaussianMechanism,
    data: PrivateData,
    private_emb: Callable[[], np.ndarray],
) -> np.ndarray:
    """The noisy (classes x dim) class-centroid sums, stored in state/centroids.json (a resume
    reuses them); `private_emb()` is read only inside the mechanism's clean function."""
    return mechanism.release(
        event,
        lambda: class_embedding_sums(
            private_emb(), data.class_ids, data.num_classes, data.user_ids
        ),
        file="centroids.json",
        tag=data.class_names,
    )


class VoteReleases:
    """The loop's DP step (`augpe.pe.loop.DPStep`): vote t's clean histogram through the mechanism
    at its planned sigma, stored in state/`file_of(t)`. The event is booked with a digest of the
    candidates voted on, so a lost stored vote is never redrawn on other candidates."""

    def __init__(
        self,
        mechanism: GaussianMechanism,
        votes: list[GaussianRelease],
        file_of: Callable[[int], str],
    ) -> None:
        self.mechanism, self.votes, self.file_of = mechanism, votes, file_of

    def release(
        self, t: int, candidates: list[Sample], clean: Callable[[], np.ndarray]
    ) -> np.ndarray:
        return self.mechanism.release(
            self.votes[t - 1],
            clean,
            file=self.file_of(t),
            tag=[s.id for s in candidates],
            subject=[[s.id, s.class_id, s.text] for s in candidates],
        )
