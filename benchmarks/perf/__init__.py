"""Performance benchmarks; each module runs as a script (`python benchmarks/perf/vote_scale.py`)."""
