#!/usr/bin/env bash
# The main job, from a fresh clone: install, then make DP synthetic Amazon fine-food reviews (eps=1)
# with the embedded model, and print where the corpus is and a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
exec .venv/bin/augpe demo "$@"
