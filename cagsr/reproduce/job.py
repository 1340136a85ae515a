"""The `cagsr reproduce` job: every row of one of the paper's tables, trained, evaluated and rendered.

    path, out, rep = run_reproduce(ReproduceJob(table="cot", scale="medium"))
Writes table.md (paper layout, mean ± std or paired differences, the paper's figures beside), table.json,
configs/, compute.json and a reward-validity report to --output-dir (default runs/reproduce-TABLE-SCALE).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cagsr.config import check_range
from cagsr.utils.run import RunConfig, prepare_resumable_dir


@dataclass
class ReproduceJob:
    """`cagsr reproduce`: the paper's tables with baselines and ablations from one supervised model."""

    table: Literal["dialogue", "cot"] = field(default="dialogue", metadata={"flag": "--table"})
    """Which table: dialogue (coherence, consistency) or cot (accuracy, step correctness)."""
    scale: Literal["tiny", "small", "medium", "medium-v2", "tiny-medium", "full"] = field(
        default="small", metadata={"flag": "--scale"})
    """tiny: random tiny model (tests); small: SmolLM2-135M on this CPU (~1 h/table); medium: SmolLM2-135M,
    RL rows trained until their reward rises, paired statistics on 150 dialogues (every agent turn) / 100 + 200
    problems (~3 h a table at one thread, see docs/results/reproduce-medium-design.md); medium-v2: medium with
    3 supervised models trained until they flatten, 200 + 200 problems and 64 stopping items (~13-14 h for
    both tables); tiny-medium: the medium code path with a tiny model (tests); full: the paper's sizes, GPU."""
    seeds: int = field(default=1, metadata={"flag": "--seeds"})
    """Seeds per row of the scales without a stopping rule (tiny, small, full; each RL seed s trains from the one
    supervised model); medium scales fix them (3 for the core rows and the controls, 1 for the others)."""
    budget_minutes: float = field(default=0.0, metadata={"flag": "--budget-minutes"})
    """Start no unfinished row-seed once the minutes spent plus the longest row-seed so far
    exceed this (0: no limit). The table is written from what finished; rerunning the command continues."""
    render_only: bool = field(default=False, metadata={"flag": "--render-only"})
    """Train and evaluate nothing: write the table, plots and reports again from the row-seeds the folder holds
    finished (rows still running elsewhere are listed as not finished); the folder's config.yaml is left as it
    was. Only a run stopped before its splits, classifier and reward models existed has those built."""
    workers: int = field(default=1, metadata={"flag": "--workers"})
    """Processes that train and evaluate row-seeds at once, each with --run.threads threads (on a CPU, keep
    workers x threads at most the cores). Each row-seed is run by exactly one of them, and the table is the one
    a single process writes; a rerun with another count continues the same folder. On a 2-core CPU two
    one-thread workers evaluate 1.13x the turns per hour of one two-thread process (`benchmarks/workers.py`)."""
    run: RunConfig = field(default_factory=RunConfig)
    """Output folder and progress."""

    def __post_init__(self) -> None:
        check_range("seeds", self.seeds, low=1)
        check_range("workers", self.workers, low=1)
        check_range("budget_minutes", self.budget_minutes, low=0.0)


def run_reproduce(job: ReproduceJob):
    """Claim (or continue) the output folder, run the table's rows and write its outputs: (table.md, the
    folder, the Reproduction)."""
    out = Path(job.run.output_dir or f"runs/reproduce-{job.table}-{job.scale}")
    # A rerun of the same table and scale continues (finished rows are skipped); another job is refused.
    prepare_resumable_dir(out, job, lambda saved: (saved.get("table"), saved.get("scale")) == (job.table, job.scale),
                          legacy=("sft", "rows"), read_only=job.render_only)
    from cagsr.evaluation.analysis.validity_report import write_validity_report
    from cagsr.reproduce.pipeline import reproduce_table
    from cagsr.reproduce.render import write_outputs
    from cagsr.reproduce.results import slug
    from cagsr.utils.logging import read_metrics

    start = time.perf_counter()
    rep = reproduce_table(job.table, job.scale, out, progress=job.run.progress, threads=job.run.threads,
                          budget_minutes=job.budget_minutes, seeds=job.seeds, render_only=job.render_only,
                          workers=job.workers)
    path = write_outputs(rep, None if job.render_only else time.perf_counter() - start)
    main_row = out / "rows" / slug("CAGSR multi-turn") / "seed-0" / "run"
    history = [m for m in read_metrics(main_row) if "eval/reward" in m]
    write_validity_report(rep.eval_rows, out / "validity", history,
                          title=f"Reward validity: {job.table} table, scale {job.scale}")
    return path, out, rep
