"""`cagsr train`: PPO with the history-aware attention reward.

    cagsr train --config presets/dialogue.yaml [--key value ...]
    cagsr train --resume runs/dialogue        # continue from the newest good checkpoint
    cagsr train --output-dir runs/dialogue --run.overwrite true    # replace the run in that folder

The job (cagsr/ppo/train_job.py, the same as cagsr.api.train) evaluates a fresh run's held-out episodes
once before the first update and answers the first held-out prompts greedily before and after training;
this command prints the result line, the run folder and its HTML report (RUN/report.html), then the
before/after table and those replies (both also in RUN/table.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cagsr.cli.args import JobParser, add_job_args, parse_job
from cagsr.cli.common import quiet_libraries
from cagsr.config import load_saved_job
from cagsr.errors import ConfigError
from cagsr.ppo.config import TrainJob
from cagsr.utils.run import check_run_dir, jsonl_sink, lock_run_dir


def _is_rank_zero() -> bool:
    """Under torchrun/accelerate only global rank 0 owns the run folder (and its lock)."""
    return os.environ.get("RANK", "0") == "0"


def resumed_job(resume: Path, overwrite: bool) -> TrainJob:
    if overwrite:
        raise ConfigError("--resume continues a run and --run.overwrite replaces it: pass one of them")
    saved = resume / "config.yaml"
    if not saved.exists():
        raise ConfigError(f"{resume}: not a cagsr run folder (no config.yaml)")
    if _is_rank_zero():
        check_run_dir(resume, resume=True)
        lock_run_dir(resume)  # held until the process ends: a second resume of the same run fails at once
    return load_saved_job(TrainJob, saved, {})


def main(argv: list[str], prog: str = "cagsr train") -> None:
    parser = JobParser(prog=prog, description=TrainJob.__doc__)
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue the run in RUN_DIR from its newest good checkpoint (its config is reused)")
    add_job_args(parser, TrainJob)
    job, args = parse_job(parser, TrainJob, argv)
    resume = Path(args.resume) if args.resume else None
    if resume is not None:
        job = resumed_job(resume, job.run.overwrite)
    elif _is_rank_zero():
        check_run_dir(job.run.output_dir, job.run.overwrite)  # before the data and model load: fail at once
    quiet_libraries()
    from cagsr.ppo.train_job import run_train  # torch and the models load only once the arguments are good

    result = run_train(job, resume)
    if not result.is_main:  # only rank 0 reports
        return
    last = result.history[-1] if result.history else {}
    with jsonl_sink(job.run.output) as write:
        write({"run_dir": str(result.run_dir), "iterations": len(result.history),
               "report": str(result.report) if result.report else None,
               **{k: v for k, v in last.items() if k.startswith(("reward/", "eval/", "policy/kl_ref"))}})
    sys.stdout.flush()  # the result line first: the terminal then ends with the table and the replies
    print(f"run folder: {result.run_dir}" + (" (stopped by SIGTERM, checkpoint saved)" if result.stopped_early
                                              else ""), file=sys.stderr)
    if result.report is not None:
        print(f"report: {result.report}", file=sys.stderr)
    for text in (result.table, result.replies):
        if text:
            print(f"\n{text}", file=sys.stderr)
