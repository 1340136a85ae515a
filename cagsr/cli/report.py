"""`cagsr report RUN_DIR...`: one self-contained HTML page with curves, tables, validity plots and
attention heatmaps of sample episodes (drawn with the run's final model).

    cagsr report runs/dialogue runs/reproduce-dialogue-small --output report.html

The job is cagsr/evaluation/report_job.py; this module parses and prints.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cagsr.cli.args import JobParser


def main(argv: list[str], prog: str = "cagsr report") -> None:
    parser = JobParser(prog=prog, description="Self-contained HTML report of one or more run folders.")
    parser.add_argument("runs", nargs="+", help="run folders (train, eval or reproduce outputs)")
    parser.add_argument("--output", default="report.html", help="HTML file to write [default: report.html]")
    parser.add_argument("--heatmaps", type=int, default=3,
                        help="attention heatmaps (turns) per run, drawn with its final model; 0 disables [default: 3]")
    args = parser.parse_args(argv)
    from cagsr.cli.common import quiet_libraries
    from cagsr.evaluation.report_job import report_html

    quiet_libraries()
    html = report_html([Path(r) for r in args.runs], args.heatmaps)
    Path(args.output).write_text(html, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
