"""Two one-thread workers against one two-thread process, on the work that fills a reproduce row-seed: a
held-out dialogue evaluation (greedy generation, coherence, the attention reward) at the medium-v2 settings.

    .venv/bin/python benchmarks/workers.py --output runs/bench-workers.md
    .venv/bin/python benchmarks/workers.py --quick          # tiny-llama, seconds: a smoke test

`cagsr reproduce --workers 2 --run.threads 1` runs two row-seeds side by side, each at one thread; without
it one process runs them one after the other at `--run.threads 2`. Each layout here evaluates the same
dialogues the same number of times (two evaluations, as two row-seeds would), in fresh processes that load
the model and warm up on one dialogue before a barrier starts the clock; the layouts alternate, so a drift
in machine load reaches both alike. The consistency classifier is left out (it needs a trained pool).
Time nothing while another CPU-heavy job runs: the load average is printed beside the table.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import queue
import statistics
import time
from pathlib import Path

import torch

from cagsr.bench.machine import load_average, publish, run_info

STAR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "star_dialogues.jsonl"


def _worker(threads: int, evaluations: int, model: str, data: str, dialogues: int, barrier, results) -> None:
    """Load, warm up on one dialogue, wait for the other workers, then time `evaluations` evaluations."""
    torch.set_num_threads(threads)
    from cagsr.data.config import DataConfig
    from cagsr.data.sources import load_records
    from cagsr.evaluation.runner import EvalSettings, evaluate
    from cagsr.models import load_model
    from cagsr.reproduce.plan import PLANS

    loaded = load_model(model)
    records = load_records(DataConfig(path=data, limit=dialogues))
    settings = EvalSettings(**PLANS["medium-v2"].eval)
    evaluate(loaded, records[:1], settings)  # loads the coherence model and fills the allocator
    barrier.wait()
    began = time.monotonic()  # system-wide clock: comparable between the processes
    turns = sum(evaluate(loaded, records, settings).summary["n"] for _ in range(evaluations))
    results.put((began, time.monotonic(), turns))


def run_layout(processes: int, threads: int, evaluations: int, args) -> tuple[float, int]:
    """Wall-clock seconds from the first worker's start to the last one's end, and the turns evaluated."""
    ctx = mp.get_context("spawn")  # a clean torch in each worker: its own thread pool
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(threads, evaluations, args.model, args.data, args.dialogues,
                                                 barrier, results)) for _ in range(processes)]
    for w in workers:
        w.start()
    spans = []
    while len(spans) < processes:
        try:
            spans.append(results.get(timeout=5))
        except queue.Empty:  # a worker that died would leave the others waiting at the barrier for ever
            if failed := [w.exitcode for w in workers if w.exitcode]:
                for w in workers:
                    w.terminate()
                raise SystemExit(f"workers.py: a worker failed (exit {failed[0]})") from None
    for w in workers:
        w.join()
    return max(s[1] for s in spans) - min(s[0] for s in spans), sum(s[2] for s in spans)


def measure(args) -> dict:
    layouts = {"one process, 2 threads, 2 evaluations in turn": (1, 2, 2),
               "two processes, 1 thread each, 1 evaluation each": (2, 1, 1)}
    seconds: dict[str, list[float]] = {name: [] for name in layouts}
    turns: dict[str, int] = {}
    for _ in range(args.repeats):  # alternated
        for name, (processes, threads, evaluations) in layouts.items():
            wall, turns[name] = run_layout(processes, threads, evaluations, args)
            seconds[name].append(wall)
    return {"seconds": seconds, "turns": turns}


def render(result: dict, info: dict[str, str]) -> str:
    one, two = result["seconds"]  # the layouts' names, one process first
    lines = ["# Reproduce workers: two one-thread processes against one two-thread process", "",
             "Each layout evaluates the same dialogues twice (two row-seeds' evaluations), medium-v2 settings; "
             "median wall-clock over the alternated repeats.", "",
             "| layout | turns | wall clock (each repeat) | median | turns per second |", "|---|---|---|---|---|"]
    for name, walls in result["seconds"].items():
        n, median = result["turns"][name], statistics.median(walls)
        lines.append(f"| {name} | {n} | {', '.join(f'{w:.1f} s' for w in walls)} | {median:.1f} s | "
                     f"{n / median:.2f} |")
    ratio = statistics.median(result["seconds"][one]) / statistics.median(result["seconds"][two])
    lines += ["", f"Throughput of two one-thread workers over one two-thread process: **{ratio:.2f}x**.", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="model name or path")
    parser.add_argument("--data", default=str(STAR), help="dialogues (STAR by default)")
    parser.add_argument("--dialogues", type=int, default=12, help="dialogues evaluated (every agent turn)")
    parser.add_argument("--repeats", type=int, default=2, help="alternated repeats of each layout (median)")
    parser.add_argument("--quick", action="store_true", help="tiny-llama on 4 generated dialogues, 1 repeat")
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    args = parser.parse_args()
    if args.quick:
        args.model, args.data, args.dialogues, args.repeats = "tiny-llama", "generated:dialogue", 4, 1
    start = load_average()
    result = measure(args)
    info = run_info(start, model=args.model, dialogues=str(args.dialogues), threads="as in each layout")
    publish(render(result, info), args.output)


if __name__ == "__main__":
    main()
