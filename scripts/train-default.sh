#!/usr/bin/env bash
# The main job on the embedded default: PPO with the history-aware attention reward on SmolLM2-135M and
# generated customer-support dialogues (~10 minutes on 2 CPU cores), then sample dialogues.
#   bash scripts/train-default.sh [--key value ...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${CAGSR_RUN_DIR:-runs/dialogue}
.venv/bin/cagsr train --config presets/dialogue.yaml --output-dir "$out" "$@"
.venv/bin/python - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(f"{sys.argv[1]}/samples.jsonl")]
last = [r for r in rows if r["iteration"] == rows[-1]["iteration"]]
for r in last:
    print(f"\n== {r['record_id']} (iteration {r['iteration']})")
    agent = iter(r["turns"])
    for u in r["conversation"]:
        extra = ""
        if u["role"] == "agent":
            t = next(agent, None)
            extra = f"   [reward {t['reward']:+.3f} coverage {t['coverage']:.3f} focus {t['focus']:+.2f}]" if t else ""
        print(f"{u['role']:>5}: {u['text']}{extra}")
PY
