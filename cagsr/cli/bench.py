"""`cagsr bench`: side-by-side per-turn latency of the engines, with the machine's floor measured in
the same run (see docs/benchmarks.md).

    cagsr bench --quick
    cagsr bench --model smollm2-135m --batch 8 --threads 1 --output-dir runs/bench
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cagsr.bench.config import BenchConfig
from cagsr.cli.common import parse_job_args, quiet_libraries


@dataclass
class BenchJob:
    """`cagsr bench`: engine latency (single turn, 5-turn dialogue, chain of thought, T5) against the floor."""

    bench: BenchConfig = field(default_factory=BenchConfig)
    """What to measure."""


def main(argv: list[str], prog: str = "cagsr bench") -> None:
    job, _ = parse_job_args(BenchJob, argv, prog, BenchJob.__doc__ or "")
    quiet_libraries()
    from cagsr.bench import run

    print(run(job.bench))
