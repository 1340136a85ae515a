"""`cagsr validity`: how well each attention-reward component tells good replies from bad ones (human labels).

    cagsr validity --model smollm2-135m --data ../shared/data/taskmaster4_reward.jsonl --output-dir runs/v
Any file in the Taskmaster-4 reward format works (context, generation, 0/1 reward): its text replies are
scored as the last agent turn of their context under both versions of the reward (all history tokens,
content tokens only). Writes validity-human.md / .json and scores.jsonl (one line per reply, the input
of `cagsr calibrate --scores`) to --output-dir; the AUC rows go to stdout / --output.
The job is cagsr/evaluation/analysis/validity_job.py; this module parses and prints.
"""

from __future__ import annotations

import sys

from cagsr.cli.common import parse_job_args, quiet_libraries
from cagsr.evaluation.analysis.validity_job import ValidityJob
from cagsr.utils.run import jsonl_sink


def main(argv: list[str], prog: str = "cagsr validity") -> None:
    job, _ = parse_job_args(ValidityJob, argv, prog, ValidityJob.__doc__ or "")
    quiet_libraries()
    from cagsr.evaluation.analysis.validity_job import run_validity

    table, path, facts = run_validity(job)
    print(f"wrote {path}", file=sys.stderr)
    with jsonl_sink(job.run.output) as write:
        for row in table:
            write(row | {"model": job.model.name, "settings": {"sink_tokens": facts["sink_tokens"]}})
