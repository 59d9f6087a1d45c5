"""Generation throughput: our backends vs the reference approach, same model, same prompts.

The reference (AI-secure/aug-pe, apis/hf_api.py) decodes with plain `transformers` `model.generate` in
fixed batches (random_sampling_batch_size / variation_batch_size; 128 for gpt2-medium in its yelp
script), left-padded, `do_sample`, top_k=50, top_p, `no_repeat_ngram_size=2`, fp16 on GPU. A static
batch runs until its longest row ends and never refills a finished row's slot.

CPU (default when torch sees no GPU): SmolLM2-135M-Instruct, the embedded default. Our path is
`EmbeddedLLM.generate` (xllamacpp, Q4_1 GGUF, continuous batching over `n_parallel` slots); the
reference runs the SAME GGUF dequantised by transformers (needs `pip install gguf`), fp32. We also
run the project's `TransformersLLM` on that model. Prompts are real RANDOM-API prompts of the
amazon_food prompt set (chat template applied by each backend). Two modes:
    fixed      EOS ignored, every request decodes exactly --max-new tokens (pure decode rate)
    realistic  EOS honoured; useful tokens only (a static batch also pays for finished rows)

GPU (--gpu, or automatically when CUDA is available): a randomly initialised model of a real shape
(--shape gpt2-medium), fp16/bf16, fixed max_new_tokens, EOS ignored, random prompts. Reference as
above (with and without no_repeat_ngram_size), vs the project's GPU backends that import here
(TransformersLLM; vLLM if installed) and transformers' own continuous batching (`generate_batch`).

    python benchmarks/perf/gen_throughput.py                     # CPU, < 10 min on 2 busy cores
    python benchmarks/perf/gen_throughput.py --gpu               # on a GPU machine
    python benchmarks/perf/gen_throughput.py --gpu --device cpu --shape tiny --n 8   # smoke test
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from _common import machine, write_result

SHAPES = {  # GPT-2 family shapes (n_layer, n_embd, n_head); vocab 50257, context 1024
    "tiny": (2, 64, 4),
    "gpt2": (12, 768, 12),
    "gpt2-medium": (24, 1024, 16),
    "gpt2-large": (36, 1280, 20),
}


# ---- prompts -----------------------------------------------------------------------------------
def pe_requests(n: int, max_new: int, seed: int = 0) -> list[Any]:
    """The first n RANDOM-API requests of a real run (amazon_food prompts), max_tokens fixed."""
    from dataclasses import replace

    from augpe.config import generation_config
    from augpe.llm.base import Generation, Usage
    from augpe.pe.apis import TextAPIs
    from augpe.pe.prompts import load_prompt_set

    class Capture:
        name, usage, seen = "capture", Usage(), []

        def generate(self, requests: Sequence[Any], desc: str = "", **_: Any) -> list[Any]:
            if not self.seen:
                self.seen.extend(requests)
            return [Generation(text=None, error="capture only") for _ in requests]

        def close(self) -> None: ...

    cap = Capture()
    cfg = generation_config(prompts="amazon_food", max_retries=0)
    apis = TextAPIs(
        cap, load_prompt_set("amazon_food"), cfg, ["positive, 5 stars", "mixed or negative"], seed
    )
    apis.random([i % 2 for i in range(n)], iteration=0)
    return [replace(r, max_tokens=max_new) for r in cap.seen]


# ---- the reference: transformers generate, fixed batches ------------------------------------------
def reference_generate(
    model: Any,
    tok: Any,
    prompts: list[list[int]],
    batch: int,
    max_new: int,
    fixed: bool,
    no_repeat_ngram: int,
    temperature: float,
    top_p: float,
) -> tuple[int, int]:
    """hf_api.py's loop: fixed batches, left padding, sampling. Returns (useful tokens, decoded slots)."""
    import torch

    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    eos = tok.eos_token_id
    useful = slots = 0
    for s in range(0, len(prompts), batch):
        rows = prompts[s : s + batch]
        width = max(len(r) for r in rows)
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=model.device)
        mask = torch.tensor(
            [[0] * (width - len(r)) + [1] * len(r) for r in rows], device=model.device
        )
        with torch.no_grad():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new,
                min_new_tokens=max_new if fixed else None,
                do_sample=True,
                temperature=temperature,
                top_k=50,
                top_p=top_p,
                no_repeat_ngram_size=no_repeat_ngram or None,
                pad_token_id=pad,
                eos_token_id=eos,
            )
        new = out[:, width:]
        slots += new.numel()
        for row in new.tolist():
            n = len(row)
            if not fixed and eos is not None and eos in row:
                n = row.index(eos) + 1
            useful += n
    return useful, slots


def chat_ids(tok: Any, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of the chat-templated prompt (transformers 4 returns a list, 5 a BatchEncoding)."""
    out = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def measure(fn: Callable[[], tuple[int, int]]) -> dict[str, Any]:
    """Wall and process CPU time (all threads) of one measurement. On a shared box the wall rate
    depends on what others run; tokens per CPU-second is the engine's own efficiency (a thread
    spinning at a barrier burns CPU time, so that waste still shows)."""
    c0, t0 = time.process_time(), time.perf_counter()
    useful, slots = fn()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "seconds": round(dt, 2),
        "cpu_seconds": round(cpu, 2),
        "useful_tokens": useful,
        "decoded_slots": slots,
        "tokens_per_second": round(useful / dt, 1),
        "tokens_per_cpu_second": round(useful / cpu, 1) if cpu > 0 else None,
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }


def _sync() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    except ImportError:
        pass


# ---- CPU: embedded vs reference on SmolLM2-135M ----------------------------------------------
class _IgnoreEOS:
    """Proxy of the xllamacpp server that adds ignore_eos to each request (same code path otherwise)."""

    def __init__(self, server: Any) -> None:
        self._s = server

    def handle_chat_completions(self, body: dict[str, Any]) -> Any:
        return self._s.handle_chat_completions({**body, "ignore_eos": True})

    def __getattr__(self, item: str) -> Any:
        return getattr(self._s, item)


def run_cpu(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from augpe.llm.backends.embedded import EmbeddedLLM, default_model_path

    torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    torch.manual_seed(0)
    reqs = pe_requests(args.n, args.max_new)
    gguf = default_model_path()
    res: dict[str, Any] = {
        "model": gguf.name,
        "n_prompts": len(reqs),
        "max_new_tokens": args.max_new,
        "torch_threads": torch.get_num_threads(),
        "runs": [],
    }

    embs, load_emb = {}, 0.0
    for th in args.embedded_threads:  # one engine per thread count (None = the backend default)
        embs[th], dt = timed(
            lambda th=th: EmbeddedLLM(n_parallel=args.n_parallel, threads=th, show_progress=False)
        )
        load_emb += dt
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def load_tf() -> tuple[Any, Any]:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        ).eval()
        return tok, model

    (tok, model), load_tf_s = timed(load_tf)
    res["load_seconds"] = {
        "embedded": round(load_emb, 2),
        "transformers_gguf_dequantised": round(load_tf_s, 2),
    }
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    prompt_ids = [chat_ids(tok, r.messages) for r in reqs]
    res["prompt_tokens_mean"] = round(sum(map(len, prompt_ids)) / len(prompt_ids), 1)

    from augpe.llm.backends.transformers import TransformersLLM

    def ours_embedded(emb: Any, fixed: bool) -> tuple[int, int]:
        server = emb._server
        emb._server = _IgnoreEOS(server) if fixed else server
        try:
            gens = emb.generate(reqs, desc="ours")
        finally:
            emb._server = server
        failed = [g.error for g in gens if g.text is None]
        if failed:
            raise RuntimeError(f"embedded backend failed {len(failed)} requests: {failed[0]}")
        n = sum(g.completion_tokens for g in gens)
        return n, n

    def ours_transformers(fixed: bool) -> tuple[int, int]:
        llm = TransformersLLM(
            model,
            tok,
            name="transformers:smollm2-gguf",
            batch_size=args.tf_batch,
            show_progress=False,
        )
        llm.ignore_eos = fixed
        gens = llm.generate(reqs)
        n = sum(g.completion_tokens for g in gens)
        return n, n

    def reference(batch: int, fixed: bool) -> tuple[int, int]:
        return reference_generate(
            model,
            tok,
            prompt_ids,
            batch,
            args.max_new,
            fixed,
            args.no_repeat_ngram,
            reqs[0].temperature,
            reqs[0].top_p,
        )

    # warm-up both engines outside the timed region
    for emb in embs.values():
        emb.generate(reqs[:2], desc="warm-up")
    reference_generate(model, tok, prompt_ids[:2], 2, 4, True, 0, 1.0, 0.95)

    backends: list[tuple[str, Callable[[bool], tuple[int, int]]]] = [
        (
            "ours:embedded-xllamacpp" + (f"-threads{th}" if th else ""),
            lambda fixed, e=e: ours_embedded(e, fixed),
        )
        for th, e in embs.items()
    ]
    for b in args.ref_batch:
        backends.append((f"reference:hf-generate-batch{b}", lambda fixed, b=b: reference(b, fixed)))
    if not args.skip_tf_backend:
        backends.append((f"ours:TransformersLLM-batch{args.tf_batch}", ours_transformers))
    for rep in range(args.repeats):
        for mode in args.modes:
            for name, fn in backends:
                m = measure(lambda fn=fn, mode=mode: fn(mode == "fixed"))
                row = {"rep": rep, "mode": mode, "backend": name, **m}
                print(row, file=sys.stderr, flush=True)
                res["runs"].append(row)
    res["speedup_vs_best_reference"] = speedups(res["runs"])
    return res


def speedups(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Ours over the best reference batch size, per (mode, rep), within one run: by wall tokens/s
    and by tokens per CPU-second (the latter is what the engine does with the CPU it was given)."""
    out: dict[str, dict[str, float]] = {}
    for metric in ("tokens_per_second", "tokens_per_cpu_second"):
        out[metric] = {}
        for key in sorted({(r["mode"], r["rep"]) for r in runs}):
            rows = [r for r in runs if (r["mode"], r["rep"]) == key and r.get(metric)]
            ref = max((r[metric] for r in rows if r["backend"].startswith("reference")), default=0)
            for r in rows:
                if r["backend"].startswith("ours") and ref:
                    out[metric][f"{key[0]}/rep{key[1]}/{r['backend']}"] = round(r[metric] / ref, 2)
    return out


# ---- GPU: random-init model of a real shape ------------------------------------------------------
def char_tokenizer(vocab_size: int) -> Any:
    """Offline tokenizer: one token per printable character, padded with dummy tokens to the model's
    vocab so every id a random model samples decodes; ChatML template. No hub, no files."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "<|im_end|>", "<unk>", "<|im_start|>"]
    chars = [chr(i) for i in range(32, 127)] + ["\n"]
    names = specials + chars
    names += [f"<t{i}>" for i in range(vocab_size - len(names))]
    core = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(names)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.add_special_tokens(specials)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return tok


def run_gpu(args: argparse.Namespace) -> dict[str, Any]:
    import random

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from augpe.llm.base import GenerationRequest

    dev = args.device or "cuda"
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    n_layer, n_embd, n_head = SHAPES[args.shape]
    tok = char_tokenizer(50257)
    cfg = GPT2Config(
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        vocab_size=50257,
        n_positions=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg).to(dev, dtype).eval()
    rng = random.Random(0)
    words = [
        "the",
        "food",
        "was",
        "great",
        "and",
        "the",
        "service",
        "slow",
        "but",
        "friendly",
        "price",
        "value",
        "taste",
        "fresh",
    ]
    reqs = [
        GenerationRequest(
            messages=[
                {
                    "role": "user",
                    "content": "Rephrase this review: "
                    + " ".join(rng.choice(words) for _ in range(rng.randint(10, 25))),
                }
            ],
            max_tokens=args.max_new,
            temperature=1.0,
            top_p=0.9,
            seed=i,
        )
        for i in range(args.n)
    ]
    prompt_ids = [chat_ids(tok, r.messages) for r in reqs]
    res: dict[str, Any] = {
        "shape": args.shape,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6),
        "dtype": args.dtype,
        "device": dev,
        "n_prompts": len(reqs),
        "max_new_tokens": args.max_new,
        "prompt_tokens_mean": round(sum(map(len, prompt_ids)) / len(prompt_ids), 1),
        "runs": [],
    }

    def add(name: str, fn: Callable[[], tuple[int, int]]) -> None:
        try:
            _sync()
            row = {
                "rep": 0,
                "mode": "fixed",
                "backend": name,
                **measure(lambda: (fn(), _sync())[0]),
            }
        except Exception as err:  # noqa: BLE001 - a backend that cannot run here is reported, not fatal
            row = {
                "rep": 0,
                "mode": "fixed",
                "backend": name,
                "error": f"{type(err).__name__}: {err}"[:500],
            }
        print(row, file=sys.stderr, flush=True)
        res["runs"].append(row)

    reference_generate(model, tok, prompt_ids[:4], 4, 4, True, 0, 1.0, 0.9)  # warm-up
    for b in args.ref_batch:
        for ngram in sorted({0, args.no_repeat_ngram}):
            add(
                f"reference:hf-generate-batch{b}" + (f"-no_repeat_ngram{ngram}" if ngram else ""),
                lambda b=b, ngram=ngram: reference_generate(
                    model, tok, prompt_ids, b, args.max_new, True, ngram, 1.0, 0.9
                ),
            )
    try:
        from augpe.llm.backends.transformers import TransformersLLM

        for b in args.tf_batches:
            llm = TransformersLLM(
                model,
                tok,
                name=f"transformers:{args.shape}",
                batch_size=b,
                show_progress=False,
                ignore_eos=True,
            )
            llm.generate(reqs[:2])

            def ours(llm: Any = llm) -> tuple[int, int]:
                n = sum(g.completion_tokens for g in llm.generate(reqs))
                return n, n

            add(f"ours:TransformersLLM-batch{b}", ours)
    except ImportError as err:
        res["runs"].append({"backend": "ours:TransformersLLM", "error": str(err)})
    if hasattr(model, "generate_batch"):
        from transformers import GenerationConfig

        def hf_cb(inputs: list[list[int]], max_new: int) -> tuple[int, int]:
            # transformers' own continuous batching (paged KV cache); the kwargs it does not know
            # in a given version are kept as plain attributes and ignored
            gc = GenerationConfig(
                max_new_tokens=max_new,
                do_sample=True,
                temperature=1.0,
                top_p=0.9,
                eos_token_id=-1,  # EOS ignored: fixed length
                pad_token_id=tok.pad_token_id,
                num_blocks=args.cb_blocks,
                max_batch_tokens=args.cb_batch_tokens,
            )
            out = model.generate_batch(inputs=inputs, generation_config=gc, progress_bar=False)
            n = sum(len(o.generated_tokens) for o in out.values())
            return n, n

        try:
            hf_cb(prompt_ids[:4], 4)  # warm-up: cache allocation, kernels
            add(
                "transformers-continuous-batching(generate_batch)",
                lambda: hf_cb(prompt_ids, args.max_new),
            )
        except Exception as err:  # noqa: BLE001 - reported, not fatal
            res["runs"].append(
                {"backend": "transformers-continuous-batching", "error": str(err)[:500]}
            )
    try:
        import vllm  # noqa: F401

        res["runs"].append(
            {
                "backend": "ours:vllm",
                "error": "vllm importable but needs a saved model dir; "
                "not wired in this script yet",
            }
        )
    except ImportError:
        res["vllm"] = "not installed on this machine"
    res["speedup_vs_best_reference"] = speedups(
        [r for r in res["runs"] if "tokens_per_second" in r]
    )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--gpu", action="store_true", help="random-init model of a real shape (auto on CUDA)"
    )
    ap.add_argument("--cpu", action="store_true", help="force the CPU (embedded model) comparison")
    ap.add_argument("--device", default=None, help="GPU mode: device (cpu for a smoke test)")
    ap.add_argument("--shape", default="gpt2-medium", choices=sorted(SHAPES))
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    ap.add_argument("--n", type=int, default=None, help="prompts (CPU 24, GPU 1024)")
    ap.add_argument(
        "--max-new", type=int, default=None, help="new tokens per prompt (CPU 32, GPU 64)"
    )
    ap.add_argument(
        "--ref-batch",
        type=lambda s: [int(x) for x in s.split(",")],
        default=None,
        help="reference batch sizes (CPU: all prompts in one batch; GPU 128)",
    )
    ap.add_argument(
        "--no-repeat-ngram", type=int, default=2, help="reference's no_repeat_ngram_size (0: off)"
    )
    ap.add_argument("--modes", type=lambda s: s.split(","), default=["fixed", "realistic"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--n-parallel", type=int, default=16, help="embedded backend slots")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument(
        "--embedded-threads",
        type=lambda s: [int(x) if x not in ("", "default") else None for x in s.split(",")],
        default=[None, 1],
        help="embedded engines to compare, by CPU threads ('default' = the backend's own choice)",
    )
    ap.add_argument("--tf-batch", type=int, default=16, help="CPU: TransformersLLM batch size")
    ap.add_argument(
        "--tf-batches",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[16, 128, 256],
        help="GPU: TransformersLLM batch sizes",
    )
    ap.add_argument("--skip-tf-backend", action="store_true")
    ap.add_argument("--cb-blocks", type=int, default=4096)
    ap.add_argument("--cb-batch-tokens", type=int, default=2048)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    info = machine()
    gpu = args.gpu or (not args.cpu and info["gpu"] is not None)
    if gpu:
        args.n = args.n or 1024
        args.max_new = args.max_new or 64
        args.ref_batch = args.ref_batch or [128]
        res = run_gpu(args)
    else:
        # sized for < 10 min on the shared 2-core box (generation ran at 10-25 tok/s there); the
        # reference gets one static batch of every prompt: its own scripts use 64-1024 for small models
        args.n = args.n or 24
        args.max_new = args.max_new or 32
        args.ref_batch = args.ref_batch or [args.n]
        res = run_cpu(args)
    write_result("gen_throughput_" + ("gpu" if gpu else "cpu"), {"_machine": info, **res}, args.out)
    print(res["speedup_vs_best_reference"])


if __name__ == "__main__":
    main()
