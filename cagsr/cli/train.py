"""`cagsr train`: PPO with the history-aware attention reward.

    cagsr train --config presets/dialogue.yaml [--key value ...]
    cagsr train --resume runs/dialogue        # continue from the newest good checkpoint
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from cagsr.cli.args import JobParser, add_job_args, parse_job
from cagsr.cli.common import quiet_libraries
from cagsr.config import from_dict
from cagsr.errors import ConfigError
from cagsr.ppo.config import TrainJob
from cagsr.utils.run import jsonl_sink


def main(argv: list[str], prog: str = "cagsr train") -> None:
    parser = JobParser(prog=prog, description=TrainJob.__doc__)
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue the run in RUN_DIR from its newest good checkpoint (its config is reused)")
    add_job_args(parser, TrainJob)
    job, args = parse_job(parser, TrainJob, argv)
    resume = Path(args.resume) if args.resume else None
    if resume is not None:
        saved = resume / "config.yaml"
        if not saved.exists():
            raise ConfigError(f"{resume}: not a cagsr run folder (no config.yaml)")
        job = from_dict(TrainJob, yaml.safe_load(saved.read_text(encoding="utf-8")))
    quiet_libraries()
    from cagsr.ppo.trainer import run_train

    result = run_train(job, resume)
    if not result.is_main:  # only rank 0 reports
        return
    last = result.history[-1] if result.history else {}
    print(f"run folder: {result.run_dir}" + (" (stopped by SIGTERM, checkpoint saved)" if result.stopped_early
                                              else ""), file=sys.stderr)
    with jsonl_sink(job.run.output) as write:
        write({"run_dir": str(result.run_dir), "iterations": len(result.history),
               **{k: v for k, v in last.items() if k.startswith(("reward/", "eval/", "policy/kl_ref"))}})
