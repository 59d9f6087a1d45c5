"""The Gaussian mechanism: the one place noise is drawn, and the only way a release is recorded.

Three rules, each enforced here rather than by the callers:

1. **Recorded before drawn.** `release` books the event in the ledger and saves the ledger (write-
   ahead) before the noise exists. A crash can leave an event without its noisy value (the ledger
   then over-reports, the safe side), never a noisy value the ledger does not price.
2. **Drawn once per run.** The noisy value is stored (atomically) with the sigma it was drawn with
   and the run's nonce. A resume of the same run gets the stored value back and books the *stored*
   sigma; a stored value drawn with another sigma, or by another run, is refused. Noise comes from
   a generator seeded by (run seed, release name), so even a crash between the ledger write and
   the store re-derives the very same noise instead of new noise. The event carries a digest of
   what it was drawn on (the bins and, for a vote, the candidate texts); if the stored value is
   lost and the histogram would differ, drawing again is refused: the same noise on two different
   clean histograms would give away their exact difference.
3. **Fresh per run.** The seed belongs to the run: `RunSecret.new` draws it from OS entropy for
   every fresh run under a new random nonce (written in the ledger, public) and keeps it in the
   PRIVATE folder under that nonce. Two fresh runs never share noise, even with one PRIVATE
   folder; a resume finds its seed only through the nonce of its own ledger.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from augpe.atomic import write_json
from augpe.errors import AugpeError
from augpe.privacy.ledger import GaussianRelease, Ledger

log = logging.getLogger("augpe")

__all__ = ["GaussianMechanism", "PrivacyStateError", "RunSecret"]


class PrivacyStateError(AugpeError):
    """Stored privacy state does not belong to this run or these settings: refuse, never guess."""


def add_gaussian_noise(hist: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """A float64 copy of `hist` plus i.i.d. N(0, sigma^2); sigma = 0 (epsilon = inf) adds nothing.

    Called by `GaussianMechanism.release` only (a test checks that no other module calls it).
    Always a copy: the clean histogram must never be mutated into, or confused with, the release.
    """
    if math.isnan(sigma) or sigma < 0.0 or sigma == math.inf:
        raise ValueError(f"sigma must be finite and >= 0, got {sigma}")
    noisy = np.array(hist, dtype=np.float64, copy=True)
    if sigma > 0.0:
        noisy += rng.normal(0.0, sigma, size=noisy.shape)
    return noisy


def input_digest(tag: Any, subject: Any) -> str:
    """SHA-256 of the canonical JSON of a release's public description (`tag`, `subject`)."""
    blob = json.dumps([tag, subject], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RunSecret:
    """What a run keeps in the PRIVATE folder: its noise seed and what its data hashed to."""

    nonce: str
    noise_seed: int
    data_fingerprint: str
    user_seed: bool = False

    @staticmethod
    def path(private_dir: Path, nonce: str) -> Path:
        return private_dir / "runs" / f"{nonce}.json"

    @classmethod
    def new(cls, private_dir: Path, data_fingerprint: str, user_seed: int | None) -> RunSecret:
        """A fresh run: a new nonce, and a new seed from OS entropy unless the user set one."""
        secret = cls(
            nonce=secrets.token_hex(16),
            noise_seed=user_seed if user_seed is not None else secrets.randbits(63),
            data_fingerprint=data_fingerprint,
            user_seed=user_seed is not None,
        )
        write_json(
            cls.path(private_dir, secret.nonce),
            {
                "nonce": secret.nonce,
                "noise_seed": secret.noise_seed,
                "data_fingerprint": secret.data_fingerprint,
                "user_seed": secret.user_seed,
            },
        )
        return secret

    @classmethod
    def load(cls, private_dir: Path, nonce: str, data_fingerprint: str) -> RunSecret:
        """The secret of the run named by `nonce` (from its ledger), for a resume of that run."""
        path = cls.path(private_dir, nonce)
        if not nonce or not path.is_file():
            raise PrivacyStateError(
                f"cannot resume: the PRIVATE record of run {nonce or '(no nonce)'} is not in "
                f"{private_dir / 'runs'} (deleted, or another output.private_dir); start a fresh run"
            )
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw["data_fingerprint"] != data_fingerprint:
            raise PrivacyStateError(
                "cannot resume: the private data differs from the data this run was started on "
                "(data.path / columns / max_records changed); start a fresh run"
            )
        return cls(raw["nonce"], int(raw["noise_seed"]), raw["data_fingerprint"], raw["user_seed"])

    @staticmethod
    def forget(private_dir: Path, nonce: str) -> None:
        RunSecret.path(private_dir, nonce).unlink(missing_ok=True)


class GaussianMechanism:
    """Draws every piece of noise of a run and records each release in its ledger, in one step."""

    def __init__(self, ledger: Ledger, ledger_path: Path, state_dir: Path, secret: RunSecret):
        if ledger.run_nonce != secret.nonce:
            raise PrivacyStateError(
                f"ledger of run {ledger.run_nonce!r} cannot draw with the secret of {secret.nonce!r}"
            )
        self.ledger = ledger
        self.ledger_path = ledger_path
        self.state_dir = state_dir
        self._seed = secret.noise_seed

    def release(
        self,
        event: GaussianRelease,
        clean: Callable[[], np.ndarray],
        *,
        file: str,
        tag: Any = None,
        subject: Any = None,
    ) -> np.ndarray:
        """The noisy release of `clean()` described by `event`, stored in state/`file`.

        `tag` (JSON data, e.g. the ids of the bins) is stored with the value and must match on
        reuse: a stored histogram of another population is never handed out. `subject` (public
        JSON data, e.g. the candidate texts voted on) is only hashed, with the tag, into the
        event's `input_digest`.
        """
        event = replace(event, input_digest=input_digest(tag, subject))
        path = self.state_dir / file
        if path.is_file():
            return self._reuse(event, path, tag)
        self._book(event)  # write-ahead: priced before it exists
        values = clean()
        noisy = add_gaussian_noise(values, event.sigma, self._rng(event.name))
        del values  # the clean histogram never leaves this function
        write_json(
            path,
            {
                "name": event.name,
                "run_nonce": self.ledger.run_nonce,
                "sigma": event.sigma,
                "sensitivity": event.sensitivity,
                "tag": tag,
                "noisy": noisy.tolist(),
            },
        )
        return noisy

    def _reuse(self, event: GaussianRelease, path: Path, tag: Any) -> np.ndarray:
        raw = json.loads(path.read_text(encoding="utf-8"))
        where = f"{path}: stored release {event.name!r}"
        if raw.get("run_nonce") != self.ledger.run_nonce:
            raise PrivacyStateError(f"{where} belongs to another run; cannot reuse its noise")
        if raw.get("tag") != tag:
            raise PrivacyStateError(f"{where} belongs to another population; cannot resume")
        stored_sigma = float(raw["sigma"])
        if stored_sigma != event.sigma or float(raw["sensitivity"]) != event.sensitivity:
            raise PrivacyStateError(
                f"{where} was drawn with sigma={stored_sigma:g}, this run asks sigma="
                f"{event.sigma:g}: the privacy settings changed since; start a fresh run"
            )
        self._book(event)  # books the stored sigma (checked equal above)
        return np.asarray(raw["noisy"], dtype=np.float64)

    def _book(self, event: GaussianRelease) -> None:
        booked = self.ledger.get(event.name)
        if booked is not None:
            if booked.input_digest != event.input_digest:
                raise PrivacyStateError(
                    f"release {event.name!r} is booked on other inputs than this run now asks "
                    "(its stored value is lost and the population differs): drawing its noise "
                    "again would reveal the difference of two clean histograms; start a fresh run"
                )
            if booked != event:
                raise PrivacyStateError(
                    f"release {event.name!r} is in the ledger as {booked}, now asked as {event}"
                )
            return
        self.ledger.record(event)  # raises BudgetExceeded before anything is drawn
        self.ledger.save(self.ledger_path)

    def _rng(self, name: str) -> np.random.Generator:
        return np.random.default_rng([self._seed, zlib.crc32(name.encode("utf-8"))])
