#!/usr/bin/env bash
# The main job on the embedded default: PPO with the history-aware attention reward on SmolLM2-135M and
# generated customer-support dialogues (~10 minutes on 2 CPU cores). It ends with the path of the run's HTML
# report, the before/after table of the held-out metrics and the same held-out prompts answered (greedily)
# before and after training, side by side; the sample dialogues with each turn's reward are in the report.
#   bash scripts/train-default.sh [--key value ...]
# The run goes to runs/dialogue, or to runs/dialogue-YYYYmmdd-HHMMSS when runs/dialogue already holds an
# earlier run (which is never touched); CAGSR_RUN_DIR=DIR or --output-dir DIR chooses the folder (an
# occupied one is refused unless --run.overwrite true).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${CAGSR_RUN_DIR:-runs/dialogue}
if [[ -z "${CAGSR_RUN_DIR:-}" && -e "$out/config.yaml" ]]; then
  out="runs/dialogue-$(date +%Y%m%d-%H%M%S)"
  echo "runs/dialogue holds an earlier run: this one goes to $out" >&2
fi
# The result line (JSON) comes first on standard output; the run then ends, on standard error, with the run
# folder, its report, the before/after table and the same held-out prompts answered before and after.
.venv/bin/cagsr train --config presets/dialogue.yaml --output-dir "$out" "$@"
