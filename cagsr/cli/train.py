"""`cagsr train`: PPO with the history-aware attention reward.

    cagsr train --config presets/dialogue.yaml [--key value ...]
    cagsr train --resume runs/dialogue        # continue from the newest good checkpoint
    cagsr train --output-dir runs/dialogue --run.overwrite true    # replace the run in that folder

A fresh run evaluates the held-out episodes once before the first update, so the run ends with a
before/after table (RUN/table.md, printed on standard error) and writes its HTML report (RUN/report.html).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from cagsr.cli.args import JobParser, add_job_args, parse_job
from cagsr.cli.common import quiet_libraries
from cagsr.config import from_dict
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
    return from_dict(TrainJob, yaml.safe_load(saved.read_text(encoding="utf-8")))


def train_with_table(job: TrainJob, resume: Path | None):
    """Train; a fresh run is evaluated once before any update (the table's 'before')."""
    from cagsr.distributed import shutdown
    from cagsr.ppo.trainer import Trainer

    try:
        trainer = Trainer(job, resume)
        if resume is None and trainer.dist.is_main:
            trainer.evaluate(updates=0)
        return trainer.train()
    finally:
        shutdown()


def write_table_and_report(run_dir: Path) -> tuple[str, Path | None]:
    """RUN/table.md from the held-out episodes, then RUN/report.html; a report that cannot be drawn
    costs a notice, never the finished run."""
    from cagsr.ppo.heldout import TABLE_FILE, before_after, read_rows, render_table

    table = before_after(read_rows(run_dir))
    text = render_table(table) if table else ""
    if text:
        (run_dir / TABLE_FILE).write_text(text, encoding="utf-8")
    try:
        from cagsr.report.page import build_report
        from cagsr.scoring.probe import run_heatmaps

        report = run_dir / "report.html"
        report.write_text(build_report([run_dir], {run_dir: run_heatmaps(run_dir, 3)}), encoding="utf-8")
    except Exception as err:  # noqa: BLE001 - the run is finished and saved; its report is a convenience
        print(f"cagsr train: notice: no HTML report ({type(err).__name__}: {err})".splitlines()[0], file=sys.stderr)
        return text, None
    return text, report


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
    result = train_with_table(job, resume)
    if not result.is_main:  # only rank 0 reports
        return
    last = result.history[-1] if result.history else {}
    table, report = write_table_and_report(result.run_dir)
    if table:
        print(table, file=sys.stderr)
    print(f"run folder: {result.run_dir}" + (" (stopped by SIGTERM, checkpoint saved)" if result.stopped_early
                                              else ""), file=sys.stderr)
    if report is not None:
        print(f"report: {report}", file=sys.stderr)
    with jsonl_sink(job.run.output) as write:
        write({"run_dir": str(result.run_dir), "iterations": len(result.history),
               "report": str(report) if report else None,
               **{k: v for k, v in last.items() if k.startswith(("reward/", "eval/", "policy/kl_ref"))}})
