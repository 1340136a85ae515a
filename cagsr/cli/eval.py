"""`cagsr eval`: generate on a split and report coherence, consistency, accuracy, step correctness,
latency and the attention-reward components of the generated text.

    cagsr eval --model runs/dialogue --data ../shared/data/star_dialogues.jsonl --limit 200
Writes eval.json and eval.md to --output-dir; one JSON line per evaluated turn to stdout/--output.
The job is cagsr/evaluation/job.py; this module parses and prints.
"""

from __future__ import annotations

import sys

from cagsr.cli.common import parse_job_args, quiet_libraries
from cagsr.evaluation.job import EvalJob
from cagsr.utils.run import jsonl_sink


def main(argv: list[str], prog: str = "cagsr eval") -> None:
    job, _ = parse_job_args(EvalJob, argv, prog, EvalJob.__doc__ or "")
    quiet_libraries()
    from cagsr.evaluation.job import run_eval, write_eval_folder
    from cagsr.utils.run import check_run_dir

    check_run_dir(job.run.output_dir, job.run.overwrite)  # an earlier run's folder: refused before the eval runs
    report = run_eval(job)
    _, table = write_eval_folder(job, report)
    print(table, file=sys.stderr)
    with jsonl_sink(job.run.output) as write:
        for row in report.rows:
            write(row)
