#!/usr/bin/env bash
# Install with the dev extras; with no arguments: ruff, mypy, then the default test suite (no slow
# / GPU tests; the Ray tests start a real 2-node local cluster and are included).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ "$#" -eq 0 ]; then  # the default (CI) run also lints and type-checks
  .venv/bin/ruff check augpe tests benchmarks
  .venv/bin/ruff format --check augpe
  .venv/bin/mypy augpe
  set -- -m "not slow and not gpu"
fi
exec .venv/bin/python -m pytest -q "$@"
