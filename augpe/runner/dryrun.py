"""`augpe run --dry-run`: what a run would send, counted and shown, with nothing sent or spent.

Reads the data (to check it and count classes) but releases nothing: class sizes are estimated
with an equal split, since the real sizes come from a DP count that only a real run may draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from augpe.config import Config
from augpe.errors import ConfigError
from augpe.llm.base import GenerationRequest
from augpe.llm.cost import Prices
from augpe.llm.tokens import prompt_counter
from augpe.pe.apis import request_rng
from augpe.pe.prompts import PromptSet, load_prompt_set
from augpe.pe.render import render_fill_blanks, render_random, render_rephrase
from augpe.pe.requests import request_counts
from augpe.pe.select import allocate
from augpe.pe.textops import mask_text, max_tokens_for
from augpe.records.data import load_private_data

PLACEHOLDER = "<a synthetic sample of about {words} words>"


def example_prompts(
    cfg: Config, prompts: PromptSet, labels: list[str], n: int
) -> list[list[dict[str, str]]]:
    """The first `n` requests' messages: one RANDOM API request, then variations of a placeholder."""
    g, length = cfg.generation, cfg.generation.length
    examples: list[list[dict[str, str]]] = []
    for i in range(n):
        rng = request_rng(cfg.seed, 0, "random", 0, i, 0)
        c = i % len(labels)
        if i == 0:
            examples.append(render_random(prompts, labels[c], length.random_words, rng)[0])
        else:
            text = PLACEHOLDER.format(words=length.random_words)
            if g.variation == "fill_blanks" or (g.variation == "mixed" and i % 2 == 0):
                examples.append(
                    render_fill_blanks(
                        prompts, labels[c], mask_text(text, 0.5, rng), length.random_words, rng
                    )
                )
            else:
                examples.append(render_rephrase(prompts, labels[c], text, length.random_words, rng))
    return examples


def dry_run(cfg: Config, n_examples: int = 3) -> dict[str, Any]:
    data = load_private_data(cfg.data)
    if cfg.pe.samples < data.num_classes:  # as a real run refuses it (augpe.runner.compose)
        raise ConfigError(
            f"pe.samples={cfg.pe.samples} is smaller than the number of classes "
            f"({data.num_classes}); every class needs at least one synthetic sample"
        )
    g, length = cfg.generation, cfg.generation.length
    prompts = load_prompt_set(g.prompts)
    labels = [g.label_descriptions.get(c, c) for c in data.class_names]
    sizes = allocate(cfg.pe.samples, np.ones(data.num_classes))
    examples = example_prompts(cfg, prompts, labels, n_examples)
    # A mixture member with its own prompt set or class descriptions is counted with its own.
    counted = list(examples)
    for i in range(len(g.mixture)):
        m = g.mixture_member(i)[0]
        if m.prompts != g.prompts or m.label_descriptions != g.label_descriptions:
            own = [m.label_descriptions.get(c, c) for c in data.class_names]
            counted += example_prompts(cfg, load_prompt_set(m.prompts), own, n_examples)
    counts = request_counts(cfg.pe)
    max_tok = max_tokens_for(length.random_words, length.token_per_word, length.max_tokens)
    # tiktoken for OpenAI models whose encoding file is here, else 3 characters per token; a
    # mixture is counted with whichever of its members counts highest.
    members = [g.mixture_member(i)[0] for i in range(len(g.mixture))] or [g]
    counters = [prompt_counter(m.model, m.backend) for m in members]
    prompt_tok = max(
        count(GenerationRequest(m, max_tok, g.temperature, g.top_p, 0))
        for m in counted
        for count in counters
    ) + (  # the parent text a variation carries: DP lengths may ask for up to max_tokens
        length.max_tokens
        if cfg.privacy.lengths
        else int(length.random_words * length.token_per_word)
    )
    prices = Prices(g.price_per_1k_input, g.price_per_1k_output)
    worst_in = counts["total"] * prompt_tok
    worst_out = counts["total"] * length.max_tokens
    return {
        "backend": g.backend,
        "model": g.model,
        "classes": data.class_names,
        "private_records": len(data),
        "samples_per_class_estimate": sizes.tolist(),
        "requests": counts,
        "max_retries_each": g.max_retries,
        "estimated_prompt_tokens": worst_in,
        "prompt_tokens_counted_with": sorted({c.describe() for c in counters}),
        "max_completion_tokens": worst_out,
        "estimated_max_cost": round(prices.cost(worst_in, worst_out), 4),
        "example_prompts": examples,
    }


def format_dry_run(report: dict[str, Any]) -> str:
    r = report["requests"]
    lines = [
        f"dry run: nothing was sent, no privacy budget spent (backend {report['backend']})",
        f"  data: {report['private_records']} records, classes {report['classes']}",
        (
            f"  requests: {r['initial_total']} for the initial population ({r['random_api']} "
            f"random API), then {r['per_round']} per round x {r['rounds']} rounds = {r['total']} "
            f"(+ up to {report['max_retries_each']} retries each for empty/malformed answers)"
        ),
        (
            f"  tokens: ~{report['estimated_prompt_tokens']} prompt, <= "
            f"{report['max_completion_tokens']} completion; estimated max cost "
            f"{report['estimated_max_cost']}"
        ),
        "  prompt tokens counted with: " + "; ".join(report["prompt_tokens_counted_with"]),
        "  example prompts:",
    ]
    for msgs in report["example_prompts"]:
        for m in msgs:
            lines.append(f"    [{m['role']}] {m['content']}")
        lines.append("    ---")
    return "\n".join(lines)
