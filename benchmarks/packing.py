"""Per-turn rows vs packed dialogues: one PPO iteration by phase, and the cost per agent turn as dialogues grow.

    .venv/bin/python benchmarks/packing.py --threads 2 --output runs/bench-packing.md
    .venv/bin/python benchmarks/packing.py --quick          # tiny-llama, seconds: a smoke test

Time nothing while another CPU-heavy job runs: the load average is printed beside the tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from cagsr.bench.machine import load_average, measure_machine, publish, run_info
from cagsr.bench.packing import growing_dialogues, ppo_iteration, render


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="dialogue", help="training preset whose iteration is timed")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per row (median reported)")
    parser.add_argument("--turns", type=int, nargs="+", default=[1, 2, 4, 8], help="dialogue lengths (agent turns)")
    parser.add_argument("--episodes", type=int, default=4, help="dialogues per growing-dialogue row")
    parser.add_argument("--words", type=int, default=18, help="words per utterance of the growing dialogues")
    parser.add_argument("--sections", nargs="+", default=["iteration", "growing"], choices=["iteration", "growing"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--seed", type=int, default=0, help="run seed")
    parser.add_argument("--quick", action="store_true", help="tiny-llama preset, 1 repeat, 1 and 2 turns")
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    preset, overrides = args.preset, {}
    if args.quick:
        preset, args.repeats, args.turns = "tiny", 1, [1, 2]
    start = load_average()
    machine = measure_machine("cpu")
    iteration = ppo_iteration(preset, machine, args.repeats, args.seed, overrides) if "iteration" in args.sections else []
    growing = (growing_dialogues(preset, machine, args.turns, args.episodes, args.words, args.repeats, args.seed)
               if "growing" in args.sections else [])
    publish(render(iteration, growing, machine, run_info(start)), args.output)


if __name__ == "__main__":
    main()
