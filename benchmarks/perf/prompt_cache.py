"""Why the demo's generator ran at 43 tok/s, and what reusing the shared prompt prefix buys.

On a CPU both prompt processing and batched decoding are compute-bound, so a prompt token costs
about as much as a generated one. The VARIATION API's prompts carry the parent text (about two
prompt tokens per generated token in the demo), so generated tokens/s is well below a
short-prompt measurement. llama.cpp can keep each slot's KV and reuse the longest common prefix of
the next prompt (`cache_prompt`); all prompts of a prompt set share the system prompt and the
instruction. augpe turns it on whenever `generation.deterministic` is false.

Two embedded backends (cache_prompt off / on), same settings, the same real rephrase prompts
(amazon_food prompt set, parents = real synthetic-looking reviews), calls interleaved round by round
so both see the same load. Also a short-prompt round (RANDOM API style) to show the prompt cost.

    python benchmarks/perf/prompt_cache.py                # 3 rounds x 48 requests, ~6 min on 2 cores
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from _common import machine, write_result

PARENTS = [
    (
        "I bought this coffee last month and it was a letdown. The aroma is fine but the taste is flat "
        "and bitter, and the bag arrived half open. I would not buy it again."
    ),
    (
        "My dog goes crazy for these treats. They are small, soft and easy to break in half, and the "
        "bag lasts a couple of weeks. Great price with subscribe and save."
    ),
    (
        "The crackers taste like cardboard and they were crushed when they arrived. For the price I "
        "expected better. Two stars because the ingredients are clean."
    ),
    (
        "Best honey I have had in years. Thick, floral and not too sweet. The jar is big and it came "
        "well packed. I already ordered two more."
    ),
]


def requests(kind: str, n: int, seed: int) -> list[Any]:
    from augpe.llm.base import GenerationRequest
    from augpe.pe.apis import request_rng
    from augpe.pe.prompts import load_prompt_set
    from augpe.pe.render import render_random, render_rephrase

    prompts = load_prompt_set("amazon_food")
    labels = ["positive, 5 stars", "mixed or negative, 1 to 4 stars"]
    out = []
    for i in range(n):
        rng = request_rng(seed, 1, kind, 0, i, 0)
        if kind == "rephrase":
            msgs = render_rephrase(prompts, labels[i % 2], PARENTS[i % len(PARENTS)], 45, rng)
        else:
            msgs, _ = render_random(prompts, labels[i % 2], 45, rng)
        out.append(
            GenerationRequest(
                messages=msgs,
                max_tokens=110,
                temperature=1.0,
                top_p=0.95,
                seed=int(rng.integers(2**31 - 1)),
            )
        )
    return out


def timed(llm: Any, reqs: list[Any]) -> dict[str, float]:
    t0 = time.perf_counter()
    gens = llm.generate(reqs)
    dt = time.perf_counter() - t0
    p = sum(g.prompt_tokens for g in gens)
    c = sum(g.completion_tokens for g in gens)
    return {"seconds": dt, "prompt_tokens": p, "completion_tokens": c}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=48, help="requests per call")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n-parallel", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    info = machine()
    from augpe.llm.backends.embedded import EmbeddedLLM

    kw = {"n_parallel": args.n_parallel, "threads": args.threads, "show_progress": False}
    llms = {
        "prefix_off": EmbeddedLLM(cache_prompt=False, **kw),
        "prefix_on": EmbeddedLLM(cache_prompt=True, **kw),
    }
    rows: dict[str, list[dict[str, float]]] = {
        f"{k}/{m}": [] for k in llms for m in ("rephrase", "random")
    }
    for r in range(args.rounds):
        for kind in ("rephrase", "random"):
            reqs = requests(kind, args.n, seed=r)
            order = list(llms) if r % 2 == 0 else list(reversed(llms))  # alternate who goes first
            for name in order:
                rows[f"{name}/{kind}"].append(timed(llms[name], reqs))
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    def agg(xs: list[dict[str, float]]) -> dict[str, float]:
        s = sum(x["seconds"] for x in xs)
        p = sum(x["prompt_tokens"] for x in xs)
        c = sum(x["completion_tokens"] for x in xs)
        return {
            "seconds": round(s, 2),
            "prompt_tokens": int(p),
            "completion_tokens": int(c),
            "prompt_per_completion": round(p / c, 2),
            "completion_tok_per_s": round(c / s, 1),
            "prompt_plus_completion_tok_per_s": round((p + c) / s, 1),
        }

    table = {k: agg(v) for k, v in rows.items()}
    speedup = {
        kind: round(
            table[f"prefix_on/{kind}"]["completion_tok_per_s"]
            / table[f"prefix_off/{kind}"]["completion_tok_per_s"],
            3,
        )
        for kind in ("rephrase", "random")
    }
    out = {
        "_machine": info,
        "settings": vars(args),
        "per_round": rows,
        "totals": table,
        "speedup_prefix_on_vs_off": speedup,
        "note": "interleaved calls, alternating which backend goes first; tok/s = completion tokens",
    }
    path = write_result("prompt_cache", out, args.out)
    for k, v in table.items():
        print(f"{k:22s} {v}")
    print(f"speedup (completion tok/s, prefix reuse on / off): {speedup}")
    print(f"results in {path}")


if __name__ == "__main__":
    main()
