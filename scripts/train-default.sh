#!/usr/bin/env bash
# The main job on the embedded default: PPO with the history-aware attention reward on SmolLM2-135M and
# generated customer-support dialogues (~10 minutes on 2 CPU cores). It ends with the before/after table of
# the held-out metrics and the path of the run's HTML report, then prints the last sample dialogues.
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
summary=$(.venv/bin/cagsr train --config presets/dialogue.yaml --output-dir "$out" "$@")
echo "$summary"
.venv/bin/python - "$summary" <<'PY'
import json, sys
run_dir = json.loads(sys.argv[1].strip().splitlines()[-1])["run_dir"]  # --output-dir in "$@" may have moved it
rows = [json.loads(l) for l in open(f"{run_dir}/samples.jsonl")]
last = [r for r in rows if r["iteration"] == rows[-1]["iteration"]]
for r in last:
    print(f"\n== {r['record_id']} (iteration {r['iteration']})")
    agent = iter(r["turns"])
    for u in r["conversation"]:
        extra = ""
        if u["role"] == "agent":
            t = next(agent, None)
            extra = f"   [reward {t['reward']:+.3f} coverage {t['coverage']:.3f} focus {t['focus']:+.2f}]" if t else ""
        print(f"{u['role']:>6}: {u['text']}{extra}")
PY
