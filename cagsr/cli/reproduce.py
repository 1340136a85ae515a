"""`cagsr reproduce`: every row of the paper's dialogue or chain-of-thought table, N seeds.

    cagsr reproduce --table dialogue --scale small --seeds 2
Writes table.md (paper layout, mean ± std, the paper's figures beside), table.json, configs/,
compute.json and a reward-validity report to --output-dir (default runs/reproduce-TABLE-SCALE).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cagsr.cli.common import parse_job_args, quiet_libraries
from cagsr.config import check_range
from cagsr.utils.run import RunConfig, check_writable


@dataclass
class ReproduceJob:
    """`cagsr reproduce`: the paper's tables with baselines and ablations from one supervised model."""

    table: Literal["dialogue", "cot"] = field(default="dialogue", metadata={"flag": "--table"})
    """Which table: dialogue (coherence, consistency) or cot (accuracy, step correctness)."""
    scale: Literal["tiny", "small", "full"] = field(default="small", metadata={"flag": "--scale"})
    """tiny: random tiny model (tests); small: SmolLM2-135M on this CPU (~1 h/table); full: the paper's sizes, GPU."""
    seeds: int = field(default=1, metadata={"flag": "--seeds"})
    """Seeds per row."""
    run: RunConfig = field(default_factory=RunConfig)
    """Output folder and progress."""

    def __post_init__(self) -> None:
        check_range("seeds", self.seeds, low=1)


def main(argv: list[str], prog: str = "cagsr reproduce") -> None:
    job, _ = parse_job_args(ReproduceJob, argv, prog, ReproduceJob.__doc__ or "")
    out = Path(job.run.output_dir or f"runs/reproduce-{job.table}-{job.scale}")
    check_writable(out)
    quiet_libraries()
    from cagsr.evaluation.validity_report import write_validity_report
    from cagsr.reproduce.render import write_outputs
    from cagsr.reproduce.runner import reproduce, slug
    from cagsr.utils.logging import read_metrics

    start = time.perf_counter()
    rep = reproduce(job.table, job.scale, job.seeds, out, progress=job.run.progress)
    path = write_outputs(rep, job.seeds, time.perf_counter() - start)
    main_row = out / "rows" / slug("CAGSR multi-turn") / "seed-0"
    history = [m for m in read_metrics(main_row) if "eval/reward" in m]
    write_validity_report(rep.eval_rows, out / "validity", history,
                          title=f"Reward validity: {job.table} table, scale {job.scale}")
    print(path.read_text(encoding="utf-8"), file=sys.stderr)
    print(json.dumps({"table": str(path), "validity": str(out / "validity" / "validity.md")}))
