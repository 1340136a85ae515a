"""The `cagsr report` job: one self-contained HTML page of run folders, with attention heatmaps of each run's
sample episode drawn by its final model under its own reward definition. `cagsr train` writes a run's page with
it too (ppo/train_job.py), so both pages are the same.

    html = report_html([Path("runs/dialogue")], heatmaps=3)
"""

from __future__ import annotations

from pathlib import Path

from cagsr.errors import ConfigError
from cagsr.report.page import build_report, is_run_folder
from cagsr.scoring.probe import run_heatmaps


def check_run_folders(runs: list[Path]) -> None:
    """A one-line ConfigError for the first path that is not a folder holding a run."""
    for run in runs:
        if not run.is_dir():
            raise ConfigError(f"{run}: not a folder")
        if not is_run_folder(run):
            raise ConfigError(f"{run}: not a cagsr run folder (no config.yaml, metrics or tables to report)")


def report_html(runs: list[Path], heatmaps: int = 3) -> str:
    """The page of `runs` with up to `heatmaps` heatmaps (turns) per run (0: none)."""
    check_run_folders(runs)
    maps = {r: run_heatmaps(r, heatmaps) for r in runs} if heatmaps else {}
    return build_report(runs, maps)
