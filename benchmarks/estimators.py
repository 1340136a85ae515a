"""PPO + value head against GRPO without a critic: one iteration of the dialogue presets, side by side, by phase.

    .venv/bin/python benchmarks/estimators.py --threads 2 --output runs/bench-estimators.md
    .venv/bin/python benchmarks/estimators.py --quick          # tiny-llama, seconds: a smoke test

Time nothing while another CPU-heavy job runs: the load average is printed beside the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from cagsr.bench.estimators import estimators_report
from cagsr.bench.machine import measure_machine, publish


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved iterations per row (median reported)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--seed", type=int, default=0, help="run seed")
    parser.add_argument("--quick", action="store_true", help="tiny-llama, 1 repeat")
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.repeats = 1
    publish(estimators_report(measure_machine("cpu"), args.repeats, args.seed, quick=args.quick), args.output)


if __name__ == "__main__":
    main()
