"""The real embedded model (SmolLM2 GGUF) served over HTTP by xllamacpp on 127.0.0.1.

llama.cpp's server speaks the OpenAI API (chat and completions), so it is a real
OpenAI-compatible server for the `openai` backend tests. Started and stopped by the caller;
deleting the Server object stops it (the tests check the port is closed afterwards).
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from augpe.llm.backends.embedded import default_model_path


@contextmanager
def llama_server(n_parallel: int = 4, n_ctx_per_slot: int = 512) -> Iterator[str]:
    """Yields the base URL (`http://127.0.0.1:PORT/v1`) of a running xllamacpp server."""
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = str(default_model_path())
    p.n_parallel = n_parallel
    p.n_ctx = n_ctx_per_slot * n_parallel
    # One thread: llama.cpp's threads spin-wait on each other, which collapses on a busy CPU.
    threads = 1
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    p.verbosity = -1
    p.endpoint_metrics = True  # lets the teardown see requests still in flight
    srv = xllamacpp.Server(p)
    address = str(srv.listening_address).rstrip("/")
    if not address.startswith("http"):
        address = "http://" + address
    try:
        yield address + "/v1"
    finally:
        _wait_idle(srv)
        del srv
        gc.collect()


def _wait_idle(srv: object, deadline_s: float = 120.0) -> None:
    """Deleting the server while it still decodes abandoned requests can hang: let them finish."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        text = str(srv.handle_metrics())  # type: ignore[attr-defined]
        busy = sum(
            int(float(v))
            for v in re.findall(
                r"^llamacpp:requests_(?:processing|deferred) (\S+)", text, re.MULTILINE
            )
        )
        if busy == 0:
            return
        time.sleep(0.2)
