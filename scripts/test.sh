#!/usr/bin/env bash
# Install (if needed) and run the whole test suite: the fast tests, then the slow ones (real SmolLM2).
#   bash scripts/test.sh            # everything CI runs
#   bash scripts/test.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
.venv/bin/python -m pytest -m "not slow" -q
.venv/bin/python -m pytest -m slow -q
