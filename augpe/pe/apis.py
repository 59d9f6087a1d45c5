"""The RANDOM and VARIATION APIs of Private Evolution, on top of any LLM backend.

Their only inputs are class descriptions, public prompt templates and synthetic text: no private
record ever reaches a prompt. Every request has its own seed derived from (run seed, iteration,
purpose, slot, attempt), so a run is reproducible whatever the batch order. A generation that comes
back empty, malformed or as an echo of its input is retried with a new seed, then dropped and
counted; it is never replaced by the prompt or the parent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from augpe.config import GenerationConfig
from augpe.llm.base import LLM, GenerationRequest, Message
from augpe.llm.mixture import pick_by_weight, route_fraction
from augpe.pe.prompts import KEYWORD_SLOTS, PromptSet
from augpe.pe.render import (
    last_user_turn,
    render_fill_blanks,
    render_random,
    render_rephrase,
)
from augpe.pe.textops import (
    clean_generation,
    count_words,
    is_echo,
    mask_probability,
    mask_text,
    max_tokens_for,
    strip_instruction_echo,
    strip_label_echo,
    strip_markup,
    target_words,
    trim_unfinished,
)
from augpe.records.sample import Sample


class LengthTargets(Protocol):
    """Per-class target lengths for the RANDOM API (`augpe.privacy.lengths.LengthSampler`)."""

    def draw(self, c: int, rng: np.random.Generator, fallback: int, most: int) -> int: ...


_PURPOSE = {"random": 1, "rephrase": 2, "fill_blanks": 3}
_CODE = {"random": "n", "rephrase": "r", "fill_blanks": "f", "public": "p"}


def _sample_id(iteration: int, stream: int, op: str, slot: int) -> str:
    return f"t{iteration}s{stream}-{_CODE[op]}{slot}"


def request_rng(
    seed: int, iteration: int, purpose: str, stream: int, slot: int, attempt: int
) -> np.random.Generator:
    """The randomness of one request: independent of batch order, retries get fresh draws."""
    return np.random.default_rng([seed, iteration, _PURPOSE[purpose], stream, slot, attempt])


@dataclass
class GenerationStats:
    """Per-iteration counts of what was asked, kept, retried and dropped (all synthetic: DP-safe)."""

    requested: int = 0
    kept: int = 0
    retried: int = 0
    dropped: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    tidied: Counter[str] = field(default_factory=Counter)  # kept, after cutting what is counted

    def merge(self, other: GenerationStats) -> None:
        self.requested += other.requested
        self.kept += other.kept
        self.retried += other.retried
        self.dropped += other.dropped
        self.failures.update(other.failures)
        self.tidied.update(other.tidied)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "kept": self.kept,
            "retried": self.retried,
            "dropped": self.dropped,
            "failures": dict(self.failures),
            "tidied": dict(self.tidied),
        }


@dataclass(frozen=True)
class Writers:
    """Who writes each text in a mixture whose members need their own prompt sets, or whose
    variations go to their parent's model (`generation.mixture_routing: lineage`).

    The APIs then choose every request's member before rendering it with that member's prompt
    set, and name the member in the request. A RANDOM request (and a variation under `request`
    routing, or of a parent no member wrote) draws its member by weight from a hash of its slot,
    so a resumed run chooses as before; under `lineage` a variation goes to the member whose model
    wrote its parent (`Sample.model`; several members of one model: by weight among them). The
    parents are chosen from noisy votes, so each member's share of the next iteration follows the
    votes its texts won: post-processing, no privacy cost.
    """

    prompts: list[PromptSet]
    labels: list[list[str]]  # per member: each class's description in its prompts
    weights: list[float]
    names: list[str]  # the model name each member's generations carry
    lineage: bool = False

    def choose(self, key: Sequence[int], parent: Sample | None) -> int:
        among = list(range(len(self.weights)))
        if self.lineage and parent is not None:
            among = [k for k, n in enumerate(self.names) if n == parent.model] or among
        seed = int(np.random.default_rng([*key]).integers(2**62))
        return pick_by_weight(route_fraction(seed), self.weights, among)


@dataclass(frozen=True)
class _Job:
    """One sample to produce: `build(attempt)` gives the prompt and the text an echo is checked against."""

    slot: int
    stream: int
    class_id: int
    parent: Sample | None
    op: str
    build: Callable[[int], tuple[GenerationRequest, str | None]]
    label: str  # the class description the prompt used (an echo of it is cut)


class TextAPIs:
    """RANDOM_API and VARIATION_API of the paper, for one run."""

    def __init__(
        self,
        llm: LLM,
        prompts: PromptSet,
        cfg: GenerationConfig,
        class_descriptions: list[str],
        seed: int,
        keywords: list[list[str]] | None = None,
        public: Sequence[tuple[str, int]] = (),
        lengths: LengthTargets | None = None,
        writers: Writers | None = None,
    ) -> None:
        self.llm = llm
        self.prompts = prompts
        self.writers = writers  # a mixture whose members have their own prompts (or lineage)
        self.cfg = cfg
        self.labels = class_descriptions
        self.seed = seed
        self.keywords = keywords  # per class, from the DP keyword release (or None)
        self.public = list(public)  # (text, class id): the public seed corpus (data.public_seed)
        self.lengths = lengths  # per class, from the DP length release (or None: random_words)
        self.examples: dict[int, list[Sample]] = {}  # per class: in-context examples (best-voted)
        self.n_examples = 0
        self.stats = GenerationStats()

    def show_examples(self, examples: dict[int, list[Sample]], n: int) -> None:
        """`n` synthetic texts of its class shown before each VARIATION request, from `examples`
        (best first; chosen by noisy votes: post-processing); never the parent it varies."""
        self.examples, self.n_examples = examples, n

    def _writer(
        self, iteration: int, purpose: str, stream: int, slot: int, parent: Sample | None = None
    ) -> tuple[int | None, PromptSet, list[str]]:
        """The mixture member that writes this request (None: the LLM routes it), its prompt set
        and its class descriptions."""
        if self.writers is None:
            return None, self.prompts, self.labels
        key = (self.seed, iteration, 13, _PURPOSE[purpose], stream, slot)
        k = self.writers.choose(key, parent)
        return k, self.writers.prompts[k], self.writers.labels[k]

    def _request(
        self,
        messages: list[Message],
        words: int,
        seed: int,
        prompts: PromptSet,
        member: int | None,
    ) -> GenerationRequest:
        return GenerationRequest(
            messages=messages,
            max_tokens=max_tokens_for(
                words, self.cfg.length.token_per_word, self.cfg.length.max_tokens
            ),
            temperature=self.cfg.temperature,
            top_p=self.cfg.top_p,
            seed=seed,
            stop=prompts.stop,
            member=member,
        )

    # ---- RANDOM API -------------------------------------------------------------------------
    def random(self, class_ids: Sequence[int], iteration: int = 0, stream: int = 0) -> list[Sample]:
        """One fresh sample per entry of `class_ids`: a public seed text of that class while they
        last (drawn without replacement, by the run seed), else a label-conditioned generation with
        a random persona / keyword / style."""
        pools: dict[int, list[str]] = {}
        rng = np.random.default_rng([self.seed, iteration, 7, stream])
        for i in rng.permutation(len(self.public)):
            text, c = self.public[i]
            pools.setdefault(c, []).append(text)
        out: list[Sample | None] = []
        todo: list[tuple[int, int]] = []
        for slot, c in enumerate(class_ids):
            if pools.get(c):
                sid = _sample_id(iteration, stream, "public", slot)
                out.append(Sample(sid, pools[c].pop(), c, iteration, None, "public", "public"))
            else:
                out.append(None)
                todo.append((slot, c))
        made = {s.id: s for s in self._generate_random(todo, iteration, stream)}
        for slot, _ in todo:  # a generation dropped after its retries stays out
            out[slot] = made.get(_sample_id(iteration, stream, "random", slot))
        return [s for s in out if s is not None]

    def _keyword_slots(self, c: int) -> dict[str, list[str]] | None:
        """Class c's DP keywords for the {keyword} placeholders (None: the prompt set's own)."""
        kws = self.keywords[c] if self.keywords else []
        return {f: kws for f in KEYWORD_SLOTS} if kws else None

    def _random_words(self, c: int, rng: np.random.Generator) -> int:
        """The target length of a RANDOM API request: `random_words`, or a draw from the DP length
        distribution of class `c`, at most what `max_tokens` leaves room for."""
        length = self.cfg.length
        if self.lengths is None:
            return length.random_words
        most = max(length.min_words, int(length.max_tokens / length.token_per_word))
        return self.lengths.draw(c, rng, length.random_words, most)

    def _generate_random(
        self, slots: Sequence[tuple[int, int]], iteration: int, stream: int
    ) -> list[Sample]:
        def job(slot: int, c: int) -> _Job:
            member, prompts, labels = self._writer(iteration, "random", stream, slot)

            def build(attempt: int) -> tuple[GenerationRequest, str | None]:
                rng = request_rng(self.seed, iteration, "random", stream, slot, attempt)
                words = self._random_words(c, rng)
                messages, _ = render_random(prompts, labels[c], words, rng, self._keyword_slots(c))
                seed = int(rng.integers(2**31 - 1))
                return self._request(messages, words, seed, prompts, member), None

            return _Job(slot, stream, c, None, "random", build, labels[c])

        return self._run([job(i, c) for i, c in slots], iteration, "random API")

    # ---- VARIATION API ----------------------------------------------------------------------
    def vary(
        self, parents: Sequence[Sample], n_each: int, iteration: int, stream: int = 0
    ) -> list[Sample]:
        """`n_each` variations of every parent (rephrase or fill-in-the-blanks, per config)."""
        jobs: list[_Job] = []
        for i, parent in enumerate(parents):
            for j in range(n_each):
                slot = i * n_each + j
                op = self._variation_op(slot, iteration)
                member, prompts, labels = self._writer(iteration, op, stream, slot, parent)
                label = labels[parent.class_id]
                build = self._variation_builder(
                    parent, op, stream, slot, iteration, member, prompts, label
                )
                jobs.append(_Job(slot, stream, parent.class_id, parent, op, build, label))
        return self._run(jobs, iteration, f"variations it{iteration}")

    def _variation_op(self, slot: int, iteration: int) -> str:
        if self.cfg.variation != "mixed":
            return self.cfg.variation
        rng = np.random.default_rng([self.seed, iteration, 9, slot])
        return "rephrase" if rng.random() < 0.5 else "fill_blanks"

    def _variation_builder(
        self,
        parent: Sample,
        op: str,
        stream: int,
        slot: int,
        iteration: int,
        member: int | None,
        prompts: PromptSet,
        label: str,
    ) -> Callable[[int], tuple[GenerationRequest, str | None]]:
        length = self.cfg.length
        slots = self._keyword_slots(parent.class_id)
        shown = [s.text for s in self.examples.get(parent.class_id, []) if s.id != parent.id]
        shown = shown[: self.n_examples]

        def build(attempt: int) -> tuple[GenerationRequest, str | None]:
            rng = request_rng(self.seed, iteration, op, stream, slot, attempt)
            words = target_words(count_words(parent.text), length.std_words, length.min_words, rng)
            if op == "fill_blanks":
                p = mask_probability(self.cfg.mask_schedule, iteration)
                masked = mask_text(parent.text, p, rng)
                messages = render_fill_blanks(prompts, label, masked, words, rng, slots, shown)
                echo_ref = masked
            else:
                messages = render_rephrase(prompts, label, parent.text, words, rng, slots, shown)
                echo_ref = parent.text
            seed = int(rng.integers(2**31 - 1))
            return self._request(messages, words, seed, prompts, member), echo_ref

        return build

    def _tidy(self, text: str, label: str, stats: GenerationStats) -> str | None:
        """Cut HTML tags, an echoed class description and an unfinished last sentence (counted)."""
        text, marked = strip_markup(text)
        text, echoed = strip_label_echo(text, label)
        text, cut = trim_unfinished(text)
        stats.tidied["markup"] += marked
        stats.tidied["label_echo"] += echoed
        stats.tidied["unfinished_sentence"] += cut
        return clean_generation(text) if echoed or marked else text

    # ---- retries ----------------------------------------------------------------------------
    def _run(self, jobs: list[_Job], iteration: int, desc: str) -> list[Sample]:
        stats = GenerationStats(requested=len(jobs))
        done: dict[int, tuple[str, str]] = {}
        pending = jobs
        for attempt in range(self.cfg.max_retries + 1):
            if not pending:
                break
            if attempt:
                stats.retried += len(pending)
            built = [j.build(attempt) for j in pending]
            gens = self.llm.generate(
                [b[0] for b in built], desc=desc if not attempt else f"{desc} retry {attempt}"
            )
            still: list[_Job] = []
            for job, (built_req, echo_ref), gen in zip(pending, built, gens):
                if gen.text is None:
                    stats.failures["error"] += 1
                    still.append(job)
                    continue
                instruction = last_user_turn(built_req.messages)
                text = clean_generation(strip_instruction_echo(gen.text, instruction))
                if text is not None and self.cfg.tidy:
                    text = self._tidy(text, job.label, stats)
                if text is None:
                    stats.failures["empty_or_malformed"] += 1
                    still.append(job)
                elif is_echo(text, echo_ref or "") or (
                    job.parent is not None and is_echo(text, job.parent.text)
                ):
                    stats.failures["echo"] += 1
                    still.append(job)
                else:
                    done[job.slot] = (text, gen.model)
            pending = still
        stats.dropped = len(pending)
        stats.kept = len(done)
        self.stats.merge(stats)
        out = []
        for job in jobs:
            if job.slot in done:
                text, model = done[job.slot]
                out.append(
                    Sample(
                        id=_sample_id(iteration, job.stream, job.op, job.slot),
                        text=text,
                        class_id=job.class_id,
                        iteration=iteration,
                        parent_id=job.parent.id if job.parent else None,
                        model=model,
                        op=job.op,
                    )
                )
        return out
