"""`cagsr report RUN_DIR...`: one self-contained HTML page with curves, tables, validity plots and
attention heatmaps of sample episodes (drawn with the run's final model).

    cagsr report runs/dialogue runs/reproduce-dialogue-small --output report.html
"""

from __future__ import annotations

import sys
from pathlib import Path

from cagsr.cli.args import JobParser
from cagsr.errors import ConfigError


def main(argv: list[str], prog: str = "cagsr report") -> None:
    parser = JobParser(prog=prog, description="Self-contained HTML report of one or more run folders.")
    parser.add_argument("runs", nargs="+", help="run folders (train, eval or reproduce outputs)")
    parser.add_argument("--output", default="report.html", help="HTML file to write [default: report.html]")
    parser.add_argument("--heatmaps", type=int, default=3,
                        help="attention heatmaps (turns) per run, drawn with its final model; 0 disables [default: 3]")
    args = parser.parse_args(argv)
    runs = [Path(r) for r in args.runs]
    for run in runs:
        if not run.is_dir():
            raise ConfigError(f"{run}: not a folder")
    from cagsr.report.page import build_report, is_run_folder

    for run in runs:
        if not is_run_folder(run):
            raise ConfigError(f"{run}: not a cagsr run folder (no config.yaml, metrics or tables to report)")
    from cagsr.cli.common import quiet_libraries
    from cagsr.scoring.probe import run_heatmaps

    quiet_libraries()
    maps = {r: run_heatmaps(r, args.heatmaps) for r in runs} if args.heatmaps else {}
    Path(args.output).write_text(build_report(runs, maps), encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
