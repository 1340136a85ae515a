"""`cagsr reproduce`: every row of the paper's dialogue or chain-of-thought table, N seeds.

    cagsr reproduce --table dialogue --scale small --seeds 2
Writes table.md (paper layout, mean ± std, the paper's figures beside), table.json, configs/,
compute.json and a reward-validity report to --output-dir (default runs/reproduce-TABLE-SCALE).
The job is cagsr/reproduce/job.py; this module parses and prints.
"""

from __future__ import annotations

import json
import sys

from cagsr.cli.common import parse_job_args, quiet_libraries
from cagsr.reproduce.job import ReproduceJob


def main(argv: list[str], prog: str = "cagsr reproduce") -> None:
    job, _ = parse_job_args(ReproduceJob, argv, prog, ReproduceJob.__doc__ or "")
    quiet_libraries()
    from cagsr.reproduce.job import run_reproduce

    path, out, rep = run_reproduce(job)
    print(path.read_text(encoding="utf-8"), file=sys.stderr)
    print(json.dumps({"table": str(path), "validity": str(out / "validity" / "validity.md"),
                      **({"paired": str(out / "paired.json")} if rep.paired else {})}))
