"""`cagsr calibrate`: fit the reward's weights, signs and floor to labelled replies and write a preset.

    cagsr calibrate --model smollm2-135m --data ../shared/data/taskmaster4_reward.jsonl \
        --base-preset dialogue-star --preset-out presets/dialogue-star-calibrated.yaml
    cagsr calibrate --scores runs/v/scores.jsonl ...     # reuse the scores of `cagsr validity`
    cagsr calibrate --mode head_probe --data ../shared/data/ratings/fed_turn.jsonl ...   # evaluation/analysis/head_probe_job.py
Half the dialogues (--holdout) are kept out of the fit; calibration.md reports the held-out AUC of the
calibrated reward against the paper's default weights on the same replies, and says so when it is no
better. The preset is the base preset with the fitted reward section; `cagsr train --config` runs it.
The jobs are cagsr/evaluation/analysis/calibrate_job.py and head_probe_job.py; this module parses and prints.
"""

from __future__ import annotations

import sys

from cagsr.cli.common import parse_job_args, quiet_libraries
from cagsr.evaluation.analysis.calibrate_job import CalibrateJob
from cagsr.utils.run import jsonl_sink


def main(argv: list[str], prog: str = "cagsr calibrate") -> None:
    job, _ = parse_job_args(CalibrateJob, argv, prog, CalibrateJob.__doc__ or "")
    quiet_libraries()
    if job.mode == "head_probe":
        from cagsr.evaluation.analysis.head_probe_job import run_head_probe

        preset, folder, summary = run_head_probe(job)
        print(f"wrote {preset} and {folder / 'head-probe.md'}", file=sys.stderr)
        with jsonl_sink(job.run.output) as write:
            write({"preset": str(preset), **summary})
        return None
    from cagsr.evaluation.analysis.calibrate_job import run_calibrate

    preset, folder, result = run_calibrate(job)
    print(f"wrote {preset} and {folder / 'calibration.md'}", file=sys.stderr)
    with jsonl_sink(job.run.output) as write:
        write({"preset": str(preset), **result["weights"], "heldout": result["heldout"]})
