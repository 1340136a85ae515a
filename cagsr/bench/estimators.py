"""PPO with a value head against GRPO without a critic: one iteration of the dialogue presets, by phase.

    .venv/bin/python benchmarks/estimators.py --threads 2 --output runs/bench-estimators.md
    .venv/bin/cagsr bench --sections estimators

Both rows sample the same number of tokens (the same episodes, turns and token budget per iteration) and
run the same update (epochs, minibatches of episodes, no early stop), so what differs is the critic: the
value head's share of the score pass and the update, against no critic at all. Rows are interleaved
(repeat r of every row, then repeat r + 1, in alternating order) and each has its floor: the rollout's
(per turn, on top of the cached history) plus the FLOPs of its teacher-forced passes at the matmul rates
measured in the same run (cagsr.bench.packing).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from contextlib import ExitStack

import torch

from cagsr.bench.machine import Machine, load_average, model_cost, run_info
from cagsr.bench.packing import rollout_floor, teacher_forced_floor
from cagsr.config import load_job
from cagsr.ppo.config import TrainJob
from cagsr.ppo.trainer import Trainer

PHASES = ("rollout", "rows", "score", "reference", "critic", "advantages", "update", "report")
ROWS = (("PPO + value head (`dialogue`)", "dialogue", {"ppo.advantage": "return", "ppo.critic": "head"}),
        ("GRPO, no critic (`dialogue-grpo`)", "dialogue-grpo", {}))


def _job(preset: str, overrides: dict, out: str, seed: int, episodes: int, group_size: int, quick: bool) -> TrainJob:
    common = {"run.output_dir": out, "run.progress": False, "run.seed": seed, "ppo.iterations": 100,
              "rollout.episodes": episodes, "ppo.minibatch_episodes": max(1, episodes // 2), "ppo.epochs": 2,
              "ppo.target_kl": None}  # fmt: skip
    if "grpo" in preset:
        common["rollout.group_size"] = group_size
    if quick:  # the tiny model with the preset's estimator settings
        common |= {"model.name": "tiny-llama", "data.num_generated": 24, "rollout.sampling.max_new_tokens": 8,
                   "rollout.turns": 2, "rollout.engine": "hf"}  # fmt: skip
    return load_job(TrainJob, preset, {**common, **overrides})


def timed_iteration(trainer: Trainer, machine: Machine) -> dict:
    """One `Trainer.iteration()`, its phases, its wall time and its floor."""
    seen = {}
    collect = trainer.collect

    def keep_episodes(metrics):
        exp, episodes = collect(metrics)
        seen["episodes"] = episodes
        return exp, episodes

    trainer.collect = keep_episodes  # the floor needs the episodes this iteration sampled
    start = time.perf_counter()
    metrics = trainer.iteration()
    metrics["total"] = time.perf_counter() - start
    del trainer.collect
    cost = model_cost(trainer.models.policy.model)
    metrics["floor"] = rollout_floor(cost, machine, seen["episodes"]) + teacher_forced_floor(cost, machine, metrics)
    return metrics


def estimator_iterations(machine: Machine, repeats: int = 3, seed: int = 0, episodes: int = 8, group_size: int = 4,
                         quick: bool = False) -> list[dict]:
    """Median phases, total and floor of each row over `repeats` interleaved iterations (after one warm-up)."""
    samples: dict[str, list[dict]] = {name: [] for name, _, _ in ROWS}
    with ExitStack() as stack:
        trainers = {}
        for name, preset, overrides in ROWS:
            out = stack.enter_context(tempfile.TemporaryDirectory(prefix="cagsr-bench-estimators-"))
            trainers[name] = Trainer(_job(preset, overrides, out, seed, episodes, group_size, quick))
            stack.callback(trainers[name].logger.close)
            timed_iteration(trainers[name], machine)  # warm-up: oneDNN packing, caches, first allocations
        for r in range(repeats):
            for name in list(trainers)[:: 1 if r % 2 == 0 else -1]:
                samples[name].append(timed_iteration(trainers[name], machine))
    return [_summary(name, runs) for name, runs in samples.items()]


def _summary(name: str, runs: list[dict]) -> dict:
    med = statistics.median
    return {"system": name, "phases": {p: med(r.get(f"time/{p}", 0.0) for r in runs) for p in PHASES},
            "total": med(r["total"] for r in runs), "floor": med(r["floor"] for r in runs),
            "tokens": med(r["policy/response_len"] * r["batch/turn_rows"] for r in runs),
            "samples": len(runs)}  # fmt: skip


def render(rows: list[dict], machine: Machine, info: dict[str, str]) -> str:
    lines = ["## PPO + value head vs GRPO without a critic: one iteration of the dialogue preset", "",
             f"Machine: {info.get('cpu', '?')}, {info.get('threads', '?')} threads, torch {torch.__version__}; "
             f"commit {info.get('commit', '?')}; load average {info.get('load_average', '?')}. Matmul rates "
             f"measured in this run: torch.mm {machine.mm_gflops:.0f} GFLOP/s, best {machine.flops / 1e9:.0f} "
             f"GFLOP/s. Median of {rows[0]['samples']} interleaved iterations after a warm-up.", "",
             "| system | " + " | ".join(PHASES) + " | total | floor | total/floor | sampled tokens |",
             "|---|" + "---:|" * (len(PHASES) + 4)]
    for r in rows:
        lines.append(f"| {r['system']} | " + " | ".join(f"{r['phases'][p]:.2f}" for p in PHASES)
                     + f" | {r['total']:.2f} | {r['floor']:.2f} | {r['total'] / r['floor']:.2f}x | "
                     f"{r['tokens']:.0f} |")
    if len(rows) == 2:
        ppo, grpo = rows
        lines += ["", f"GRPO's iteration takes {grpo['total'] / ppo['total']:.2f}x the time of PPO + value head's "
                  f"at the same sampled-token budget; {grpo['total'] / grpo['floor']:.2f}x its floor."]
    return "\n".join(lines) + "\n"


def estimators_report(machine: Machine, repeats: int, seed: int, quick: bool = False) -> str:
    """The section as Markdown (the `cagsr bench --sections estimators` entry point)."""
    start = load_average()
    rows = estimator_iterations(machine, repeats, seed, quick=quick)
    return render(rows, machine, run_info(start))
