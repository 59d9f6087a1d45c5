"""What the command line prints after a run: its DP-safe summary and the operator's timings.

Library code that prints a run (`augpe.demo`) imports this module lazily, so the library never
imports the command line at module load.
"""

from __future__ import annotations

from typing import Any

from augpe.runner.layout import RunLayout


def print_run_summary(result: Any) -> None:
    """Where the corpus is, its size per class, the privacy spent, the generation cost, 3 samples.

    `result` is what `augpe.runner.compose.run` returns; `augpe run` and `augpe demo` print it."""
    s, t = result.summary, result.timings
    g, gt = s["generation"], t["generation"]
    print(f"\nDP synthetic corpus: {result.corpus_path}  ({s['samples']} samples)")
    print(f"  per class: {s['samples_per_class']}")
    sig = s["sigma_votes"]
    sig_txt = f"sigma {sig[0]:.4f} x {len(sig)} votes" if len(set(sig)) == 1 else f"sigma_t {sig}"
    first = [
        f"{name} sigma {s[key]:.4f}"
        for name, key in (("class counts", "sigma_class_counts"),)
        if s.get(key)
    ]
    print(
        f"  privacy: eps = {s['epsilon']:.4f} at delta = {s['delta']:.3g} ({sig_txt}"
        + "".join(f", {f}" for f in first)
        + ")"
    )
    total = g["completion_tokens"]  # every answer of the run: cached ones, earlier invocations
    print(
        f"  generation: {gt['completion_tokens']} tokens in {gt['seconds']:.1f} s "
        f"({gt['tokens_per_second']:.1f} tok/s)"
        + (
            f"; the corpus's requests hold {total} (cached answers and earlier invocations)"
            if total != gt["completion_tokens"]
            else ""
        )
        + f", {g['kept']} kept, {g['dropped']} dropped, {g['retried']} retried, model {g['model']}"
    )
    cache = t.get("request_cache") or {}
    if "cache_hits" in cache:
        print(f"  request cache: {cache['cache_hits']} hits, {cache['cache_misses']} misses")
    print(
        f"  wall time: {t['wall_seconds']:.1f} s; ledger: {RunLayout.read(result.run_dir).ledger}"
    )
    stages = t.get("totals") or {}
    if stages:
        note = (
            " (private embedding alongside the initial generation)"
            if t.get("overlap_private")
            else ""
        )
        print("  stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()) + note)
    for r in result.samples[:3]:
        print(f"  e.g. [{r['class']}] {r['text'][:160]!r}")
