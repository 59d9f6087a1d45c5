"""Generation throughput of each LLM backend that runs on this machine, on the same prompts.

Backends measured (each alone, one after the other, so they do not compete for the CPU):
  embedded      SmolLM2-135M-Instruct Q4_1 in-process (xllamacpp, continuous batching)
  openai        the `openai` backend -> xllamacpp's OpenAI-compatible HTTP server on 127.0.0.1,
                same model, same slots: the cost of the HTTP + SDK path
  transformers  the `transformers` backend on CPU, fp32. With the `gguf` package importable it
                loads the same SmolLM2 GGUF (dequantised); otherwise a tiny random Llama.

Every backend gets the same requests: RANDOM API prompts rendered from the `generic` prompt set,
one seed each. Reported: completion tokens / wall second of the timed batch (after one warm-up
request), requests/s, load time. Results go to benchmarks/results/perf/llm_throughput.md, with the
command line and the machine's load, since on a shared CPU the numbers move with the neighbours.

    python benchmarks/llm_throughput.py --requests 16 --max-tokens 48 --n-parallel 8
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augpe.llm.base import LLM, GenerationRequest
from augpe.pe.prompts import load_prompt_set
from augpe.pe.render import render_random

RESULTS = Path(__file__).parent / "results" / "perf" / "llm_throughput.md"
LABELS = ["a positive food review", "a negative food review"]


@dataclass
class Row:
    backend: str
    detail: str
    load_s: float
    wall_s: float
    requests: int
    failures: int
    completion_tokens: int
    prompt_tokens: int

    @property
    def tok_s(self) -> float:
        return self.completion_tokens / self.wall_s if self.wall_s > 0 else 0.0


def make_requests(n: int, max_tokens: int) -> list[GenerationRequest]:
    prompts = load_prompt_set("generic")
    out = []
    for i in range(n):
        rng = np.random.default_rng([2024, i])
        messages, _ = render_random(prompts, LABELS[i % 2], 40, rng)
        out.append(GenerationRequest(messages, max_tokens, 1.0, 0.95, seed=1000 + i))
    return out


def measure(
    name: str, detail: str, build: Callable[[], LLM], requests: list[GenerationRequest]
) -> Row:
    print(f"[{name}] loading ...", flush=True)
    t0 = time.perf_counter()
    llm = build()
    load = time.perf_counter() - t0
    try:
        llm.generate(requests[:1], "warm-up")
        before_c, before_p = llm.usage.completion_tokens, llm.usage.prompt_tokens
        before_f = llm.usage.failures
        t1 = time.perf_counter()
        gens = llm.generate(requests, name)
        wall = time.perf_counter() - t1
    finally:
        llm.close()
        gc.collect()
    row = Row(
        name,
        detail,
        load,
        wall,
        len(gens),
        llm.usage.failures - before_f,
        llm.usage.completion_tokens - before_c,
        llm.usage.prompt_tokens - before_p,
    )
    print(
        f"[{name}] {row.completion_tokens} tokens in {wall:.1f}s = {row.tok_s:.1f} tok/s",
        flush=True,
    )
    return row


def xllamacpp_server(n_parallel: int, n_ctx_per_slot: int, threads: int) -> Any:
    import xllamacpp

    from augpe.llm.backends.embedded import default_model_path

    p = xllamacpp.CommonParams()
    p.model.path = str(default_model_path())
    p.n_parallel = n_parallel
    p.n_ctx = n_ctx_per_slot * n_parallel
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    p.verbosity = -1
    return xllamacpp.Server(p)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--n-parallel", type=int, default=8, help="slots / concurrency / batch size")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--backends", default="embedded,openai,transformers")
    ap.add_argument(
        "--transformers-model",
        default="auto",
        help="auto: the SmolLM2 GGUF if `gguf` is importable, else a tiny random Llama; "
        "or a model folder / .gguf path",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    requests = make_requests(args.requests, args.max_tokens)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    load_before = os.getloadavg()
    rows: list[Row] = []
    n_ctx = 768

    if "embedded" in backends:
        from augpe.llm.backends.embedded import EmbeddedLLM

        rows.append(
            measure(
                "embedded",
                f"xllamacpp in-process, n_parallel={args.n_parallel}, threads={args.threads}",
                lambda: EmbeddedLLM(
                    None, args.n_parallel, n_ctx, args.threads, show_progress=False
                ),
                requests,
            )
        )

    if "openai" in backends:
        from augpe.llm.backends.openai import OpenAILLM

        holder: dict[str, object] = {}

        def build_openai() -> LLM:
            srv = xllamacpp_server(args.n_parallel, n_ctx, args.threads)
            holder["srv"] = srv
            url = str(srv.listening_address).rstrip("/")
            url = url if url.startswith("http") else "http://" + url
            return OpenAILLM(
                "smollm2", base_url=url + "/v1", concurrency=args.n_parallel, show_progress=False
            )

        rows.append(
            measure(
                "openai",
                f"openai SDK -> xllamacpp HTTP server, concurrency={args.n_parallel}",
                build_openai,
                requests,
            )
        )
        holder.clear()  # stops the server
        gc.collect()

    if "transformers" in backends:
        import torch

        from augpe.llm.backends.transformers import TransformersLLM

        torch.set_num_threads(args.threads)
        choice = args.transformers_model
        if choice == "auto":
            if importlib.util.find_spec("gguf") is not None:
                from augpe.llm.backends.embedded import default_model_path

                choice = str(default_model_path())
            else:
                choice = "tiny"
        if choice == "tiny":
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from fakes.tiny_lm import build_tiny_lm

            def build_tf() -> LLM:
                model, tok = build_tiny_lm(seed=0, hidden=256, layers=4, heads=4)
                return TransformersLLM(
                    model,
                    tok,
                    name="transformers:tiny-random",
                    batch_size=args.n_parallel,
                    show_progress=False,
                )

            detail = "tiny random Llama (4 layers, d=256, char tokenizer), fp32 CPU"
        else:

            def build_tf() -> LLM:
                return TransformersLLM.from_pretrained(
                    choice,
                    device="cpu",
                    dtype="float32",
                    batch_size=args.n_parallel,
                    show_progress=False,
                )

            detail = f"{Path(choice).name} via transformers, fp32 CPU, batch {args.n_parallel}"
        rows.append(measure("transformers", detail, build_tf, requests))

    write_results(args, rows, load_before, os.getloadavg())
    return 0


def write_results(
    args: argparse.Namespace,
    rows: list[Row],
    load_before: tuple[float, ...],
    load_after: tuple[float, ...],
) -> None:
    cmd = "python " + " ".join(
        shlex.quote(a) for a in [Path(sys.argv[0]).as_posix(), *sys.argv[1:]]
    )
    lines = [
        "# LLM backend throughput",
        "",
        f"Command: `{cmd}`",
        "",
        (
            f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
            f"Python {platform.python_version()}; load average before {load_before[0]:.2f}, "
            f"after {load_after[0]:.2f} (a shared machine: other processes compete for the cores)."
        ),
        "",
        (
            f"Same {args.requests} RANDOM API prompts (generic prompt set) for every backend, "
            f"max_tokens={args.max_tokens}, temperature 1.0, one seed per request; timed after "
            "one warm-up request."
        ),
        "",
        "| backend | setup | load s | wall s | requests | failed | prompt tok | completion tok | tok/s | req/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.backend} | {r.detail} | {r.load_s:.1f} | {r.wall_s:.1f} | {r.requests} | {r.failures} | "
            f"{r.prompt_tokens} | {r.completion_tokens} | {r.tok_s:.1f} | {r.requests / r.wall_s:.2f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    raise SystemExit(main())
