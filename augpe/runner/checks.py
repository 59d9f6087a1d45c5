"""The refusals a run makes after reading its data and before any noise is drawn or any file is
written. Each message names the setting at fault and carries no count and no private text."""

from __future__ import annotations

import logging

import numpy as np

from augpe.config import Config
from augpe.errors import ConfigError, PromptError
from augpe.pe.prompts import PromptSet, load_prompt_set
from augpe.records.data import PrivateData

log = logging.getLogger("augpe")

__all__ = ["check_run", "resolved_config"]


def resolved_config(cfg: Config, prompts: PromptSet | None = None) -> Config:
    """`cfg` with its `auto` settings decided from the config alone (no data read): privacy.keywords
    -> the prompt set's `keywords` flag; privacy.centroids -> on for a PUBLIC two-class label set
    (data.labels). Runs, resumes and audits plan their releases from the resolved config, and
    the run folder's config.yaml states the result. `prompts`: the set of
    cfg.generation.prompts, if the caller has loaded it already."""
    p, update = cfg.privacy, {}
    if p.keywords == "auto":
        update["keywords"] = (prompts or load_prompt_set(cfg.generation.prompts)).keywords
    if p.centroids == "auto":
        update["centroids"] = len(cfg.data.labels or []) == 2
    if not update:
        return cfg
    return cfg.model_copy(update={"privacy": p.model_copy(update=update)}, deep=True)


def check_run(
    cfg: Config,
    data: PrivateData,
    prompts: PromptSet,
    public: list[tuple[str, int]],
    delta: float,
) -> None:
    """Refusals that must come before any noise is drawn or any file is written."""
    if public and not {t for t, _ in public}.isdisjoint(data.texts):
        raise ConfigError(  # a public seed text goes into prompts and may be released as is
            f"data.public_seed: {cfg.data.public_seed} holds texts (column "
            f"'{cfg.data.text_column}') that are also records of the private data (data.path); "
            "the public seed must hold public texts only"
        )
    if cfg.pe.samples < data.num_classes:
        raise ConfigError(
            f"pe.samples={cfg.pe.samples} is smaller than the number of classes "
            f"({data.num_classes}); every class needs at least one synthetic sample"
        )
    if cfg.privacy.keywords is True and not prompts.has_keyword_slot:
        raise ConfigError(
            f"privacy.keywords: the prompt set '{prompts.name}' has no {{keyword}} slot in its "
            "random templates, so DP keywords would be paid for and never used"
        )
    gen = cfg.generation
    if gen.mixture_routing == "lineage" and cfg.execution.engine != "local":
        raise ConfigError(
            "generation.mixture_routing: lineage runs on the local engine (execution.engine: "
            "local), where the run knows which model wrote each text"
        )
    for i in range(len(gen.mixture)):  # a member's own prompt set: refused now, with its name
        member = gen.mixture_member(i)[0]
        if member.prompts != gen.prompts:
            try:
                load_prompt_set(member.prompts)
            except PromptError as err:
                raise ConfigError(f"generation.mixture[{i}].prompts: {err}") from None
    units = len(data) if data.user_ids is None else int(np.unique(data.user_ids).size)
    bound = cfg.privacy.population_bound
    if bound is not None and units > bound:
        raise ConfigError(  # the stated bound is what delta was fixed from: it must hold (no N)
            f"privacy.population_bound={bound} is not an upper bound on the number of records "
            "(users) in data.path; delta was fixed from it, so raise it before the run"
        )
    if delta * units >= 1.0:
        log.warning(  # a delta of at least 1/N allows publishing a record: say so (no N)
            "delta = %g is not below 1/N for this dataset: a mechanism that publishes a whole "
            "record at random meets such a delta; set a smaller privacy.delta, or "
            "privacy.population_bound to a public upper bound on the number of records (users)",
            delta,
        )
