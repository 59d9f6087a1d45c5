"""Shared test setup.

The tests folder is on sys.path (`pythonpath = ["tests", "."]` in pyproject's pytest settings),
so a test imports its stand-ins as `from fakes.<module> import ...`, and the benchmarks as
`from benchmarks... import ...`. Every stand-in lives under tests/fakes/:

    pe.py             FakeLLM, HashEmbedder, a small two-class private dataset and public pool,
                      small_config: seconds-long end-to-end runs with no model
    loop.py           the components `augpe.pe.loop.evolve` drives (APIs, embedder, vote, state)
    openai_server.py, llama_server.py, fake_vllm.py, tiny_lm.py: the LLM backends' outside world
    ray_backends.py, ray_cluster.py: Ray helpers
"""
