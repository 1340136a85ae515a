"""The training job, the same for `cagsr train` and `cagsr.api.train`: train, then leave a finished run folder.

    result = run_train(job)            # or run_train(job, resume=Path("runs/dialogue"))
    result.table, result.replies, result.report

A fresh run evaluates its held-out episodes once before the first update (the table's "before") and
answers the first held-out prompts greedily; a run that reached ppo.iterations answers them again. The
run folder then gets table.md (held-out metrics before and after, with 95% intervals, and the replies side
by side) and report.html (curves, tables, samples, heatmaps). Only rank 0 evaluates and writes.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

from cagsr.distributed import shutdown
from cagsr.ppo.config import TrainJob
from cagsr.ppo.heldout import TABLE_FILE, before_after, read_rows, render_table
from cagsr.ppo.replies import before_after_replies, read_replies, render_replies, replies_text
from cagsr.ppo.trainer import Trainer, TrainResult

REPORT_FILE = "report.html"


def run_train(job: TrainJob, resume: Path | None = None) -> TrainResult:
    """Train (resuming from `resume` when given) and write table.md and report.html on rank 0."""
    try:
        trainer = Trainer(job, resume)
        if resume is None and trainer.dist.is_main:
            trainer.evaluate(updates=0)
            trainer.answer_held_out(updates=0)
        result = trainer.train()
        if not result.is_main:
            return result
        if not result.stopped_early:
            trainer.answer_held_out(updates=trainer.state.iteration)
        return finish_run(result)
    finally:
        shutdown()


def write_table(run_dir: Path) -> tuple[str, str]:
    """RUN/table.md (metrics, then replies) from the held-out files; returns (metrics table, replies as
    plain text), each empty while the run has only one end to compare."""
    table = before_after(read_rows(run_dir))
    pairs = before_after_replies(read_replies(run_dir))
    metrics = render_table(table) if table else ""
    markdown = "\n".join(part for part in (metrics, render_replies(pairs) if pairs else "") if part)
    if markdown:
        (run_dir / TABLE_FILE).write_text(markdown, encoding="utf-8")
    return metrics, replies_text(pairs) if pairs else ""


def write_report(run_dir: Path) -> Path | None:
    """RUN/report.html; a report that cannot be drawn costs a notice, never the finished run."""
    from cagsr.evaluation.report_job import report_html

    report = run_dir / REPORT_FILE
    try:
        report.write_text(report_html([run_dir], 3), encoding="utf-8")
    except Exception as err:  # noqa: BLE001 - the run is finished and saved; its report is a convenience
        warnings.warn(f"no HTML report ({type(err).__name__}: {err})".splitlines()[0], stacklevel=1)
        return None
    return report


def finish_run(result: TrainResult) -> TrainResult:
    table, replies = write_table(result.run_dir)
    return dataclasses.replace(result, table=table, replies=replies, report=write_report(result.run_dir))
