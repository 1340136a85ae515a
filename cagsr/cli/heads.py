"""`cagsr heads`: retrieval-head scores of a model from a synthetic copy task; the top heads for the reward.

    cagsr heads --model smollm2-135m --top 8 --output-dir runs/heads
    cagsr heads --model smollm2-135m --top 8 --base-preset dialogue --preset-out presets/dialogue-retrieval.yaml

Writes retrieval-heads.json (every head's score, the model's copy accuracy, the top heads) and, with
--preset-out, the base preset with attention.heads set to the top heads, so coverage and focus read only
them; prints one JSON line with the heads (the value of --attention.heads). The job is cagsr/scoring/heads_job.py;
this module parses and prints.
"""

from __future__ import annotations

import sys

from cagsr.cli.common import parse_job_args, quiet_libraries
from cagsr.scoring.heads_job import HeadsJob, run_heads
from cagsr.utils.run import jsonl_sink


def main(argv: list[str], prog: str = "cagsr heads") -> None:
    job, _ = parse_job_args(HeadsJob, argv, prog, HeadsJob.__doc__ or "")
    quiet_libraries()
    folder, result = run_heads(job)
    print(f"wrote {folder / 'retrieval-heads.json'}", file=sys.stderr)
    with jsonl_sink(job.run.output) as write:
        write({k: result[k] for k in ("heads", "copy_accuracy", "top_scores")})
