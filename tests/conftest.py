"""Shared test setup.

The tests folder is on sys.path (`pythonpath = ["tests"]` in pyproject's pytest settings), so a
test imports its stand-ins as `from fakes.<module> import ...`. Every stand-in lives under
tests/fakes/: the LLM servers (openai_server, llama_server, fake_vllm, tiny_lm), the Ray helpers
(ray_backends, ray_cluster), the PE loop's components (loop), and the deterministic LLM /
embedder / data of the end-to-end pipeline tests (tests/fakes_pe.py, imported as `fakes_pe`).
"""
