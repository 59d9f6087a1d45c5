#!/usr/bin/env bash
# Install with the dev extras and run the default test suite (no slow / GPU tests).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ "$#" -eq 0 ]; then set -- -m "not slow and not gpu"; fi
exec .venv/bin/python -m pytest -q "$@"
