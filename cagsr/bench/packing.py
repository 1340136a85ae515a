"""Per-turn rows vs packed dialogues, side by side: one PPO iteration by phase, and dialogues that grow.

    .venv/bin/python benchmarks/packing.py --threads 2          # both sections, ~15 minutes on 2 cores
    .venv/bin/cagsr bench --sections packing

Rows of a section are interleaved (repeat r of every layout, then repeat r + 1) and start from the same
weights, optimizer state and episodes, so the only difference is how the teacher-forced passes lay out
their tokens. Every row has its floor: the FLOPs of its passes over the tokens they actually read
(2 x layer parameters x tokens + causal attention over each sequence + the LM head on response rows;
backward = 2 x forward) at the matmul rates measured in the same run (the best one for the no-grad passes,
which run with oneDNN-layout weights, torch.mm's for the update, which needs autograd), plus, for a
whole iteration, the rollout's floor (cagsr.bench.machine.ModelCost.floor per turn, on top of the
cached history).
"""

from __future__ import annotations

import copy
import random
import statistics
import tempfile
import time

import torch

from cagsr.bench.machine import Machine, ModelCost, load_average, model_cost, run_info
from cagsr.bench.workload import WORDS
from cagsr.config import load_job
from cagsr.data.schema import Dialogue, Utterance
from cagsr.ppo.config import TrainJob
from cagsr.ppo.experience import assemble
from cagsr.ppo.trainer import Trainer
from cagsr.ppo.update import ppo_update
from cagsr.rollout.recorded import recorded_episodes
from cagsr.scoring.rows import build_rows

LAYOUTS = ("padded", "turns", "packed")
PHASES = ("rows", "score", "reference", "critic", "advantages", "update")


def _snapshot(trainer: Trainer) -> dict:
    learner = trainer.models.learner
    critic = learner.critic.state_dict() if learner.critic is not None else None
    return copy.deepcopy({"policy": learner.policy.state_dict(), "critic": critic,
                          "optimizer": learner.optimizer.state_dict(), "scheduler": learner.scheduler.state_dict(),
                          "generator": trainer.generator.get_state()})


def _restore(trainer: Trainer, snap: dict) -> None:
    learner = trainer.models.learner
    learner.policy.load_state_dict(snap["policy"])
    if learner.critic is not None:
        learner.critic.load_state_dict(snap["critic"])
    learner.optimizer.load_state_dict(snap["optimizer"])
    learner.scheduler.load_state_dict(snap["scheduler"])
    trainer.generator.set_state(snap["generator"])


def pass_flops(cost: ModelCost, stats: dict, phase: str) -> float:
    """Forward FLOPs of a phase's passes from its batch/ token accounting."""
    attention = 4 * cost.layers * cost.heads * cost.head_dim
    return (2 * cost.layer_params * stats[f"batch/{phase}_tokens"] + attention * stats[f"batch/{phase}_pairs"]
            + 2 * cost.vocab * cost.hidden * stats[f"batch/{phase}_head_rows"])


def teacher_forced_floor(cost: ModelCost, machine: Machine, metrics: dict) -> float:
    """Seconds: score + reference (+ critic) forwards at the best matmul rate (they run with oneDNN-layout
    weights), and the update's forward + backward at torch.mm's rate (autograd has no oneDNN-layout kernel)."""
    no_grad = sum(pass_flops(cost, metrics, p) for p in ("score", "reference", "critic")
                  if metrics.get(f"batch/{p}_tokens"))
    return no_grad / machine.flops + 3 * pass_flops(cost, metrics, "update") / (machine.mm_gflops * 1e9)


def rollout_floor(cost: ModelCost, machine: Machine, episodes: list) -> float:
    """Seconds: per turn, prefill the new prompt tokens on top of the cached history, then decode."""
    total, turns = 0.0, max(len(ep.actions) for ep in episodes)
    for t in range(turns):
        acts = [(ep.actions[t], ep.actions[t - 1] if t else None) for ep in episodes if len(ep.actions) > t]
        cached = [len(p.history.input_ids) + len(p.response_ids) if p else 0 for _, p in acts]
        new = [len(a.history.input_ids) - c for (a, _), c in zip(acts, cached, strict=True)]
        steps = max(len(a.response_ids) for a, _ in acts)
        total += cost.floor(machine, len(acts), 1, max(1, round(statistics.fmean(new))), steps,
                            round(statistics.fmean(cached)))
    return total


def _teacher_forced(trainer: Trainer, episodes: list, layout: str) -> dict:
    """Steps 2-5 of an iteration on fixed episodes, timed by the trainer's own phases."""
    trainer.job.scoring.layout = layout
    job, metrics = trainer.job, {}
    with trainer.timed("rows", metrics):
        rows = build_rows(episodes, trainer.models.policy, trainer.salience)
    scored = trainer.score(rows, episodes, 0, len(episodes), metrics)
    with trainer.timed("advantages", metrics):
        exp = assemble(rows=rows, episodes=episodes, scored=scored, ppo=job.ppo,
                       final_weight=trainer.definition.final_turn_weight(trainer.kind))
    with trainer.timed("update", metrics):
        metrics |= ppo_update(trainer.models.learner, exp, job.ppo, job.scoring, trainer.generator, trainer.dist)
    return metrics


def ppo_iteration(preset: str, machine: Machine, repeats: int, seed: int, overrides: dict | None = None
                  ) -> list[dict]:
    """One iteration of `preset` per layout, repeats x interleaved, each from the same state and episodes."""
    with tempfile.TemporaryDirectory(prefix="cagsr-bench-packing-") as out:
        job = load_job(TrainJob, preset, {"run.output_dir": out, "run.progress": False, "run.seed": seed,
                                          "ppo.iterations": 1, **(overrides or {})})
        trainer = Trainer(job)
        cost, snap = model_cost(trainer.models.policy.model), _snapshot(trainer)
        samples: dict[str, list[dict]] = {layout: [] for layout in LAYOUTS}
        for _ in range(repeats):
            start = time.perf_counter()
            episodes, _, _ = trainer.rollout_batch()
            rollout = time.perf_counter() - start
            for layout in LAYOUTS:
                _restore(trainer, snap)
                metrics = _teacher_forced(trainer, episodes, layout)
                metrics["time/rollout"] = rollout
                metrics["floor"] = rollout_floor(cost, machine, episodes) + teacher_forced_floor(cost, machine,
                                                                                                  metrics)
                samples[layout].append(metrics)
    return [_summary(f"ppo iteration ({preset})", layout, runs, len(episodes)) for layout, runs in samples.items()]


def _summary(section: str, layout: str, runs: list[dict], agent_turns: int) -> dict:
    phases = {p: statistics.median(r.get(f"time/{p}", 0.0) for r in runs) for p in ("rollout", *PHASES)}
    keys = [k for k in runs[0] if k.startswith("batch/") or k.startswith("policy/updates")]
    return {"section": section, "layout": layout, "phases": phases, "total": sum(phases.values()),
            "floor": statistics.median(r["floor"] for r in runs), "agent_turns": agent_turns,
            **{k: statistics.median(r[k] for r in runs) for k in keys}}


def synthetic_dialogues(n: int, turns: int, words: int, seed: int) -> list[Dialogue]:
    """n dialogues of `turns` (user, agent) exchanges, every utterance `words` words long."""
    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."

    return [Dialogue(id=f"synthetic-{i}", turns=[Utterance(role, sentence()) for _ in range(turns)
                                                 for role in ("user", "agent")]) for i in range(n)]


def growing_dialogues(preset: str, machine: Machine, turns: list[int], episodes: int, words: int, repeats: int,
                      seed: int) -> list[dict]:
    """Teacher-forced phases (score, reference, update) of recorded dialogues of T turns, per agent turn."""
    rows_out = []
    with tempfile.TemporaryDirectory(prefix="cagsr-bench-growing-") as out:
        trainer = Trainer(load_job(TrainJob, preset, {"run.output_dir": out, "run.progress": False,
                                                      "run.seed": seed, "ppo.iterations": 1, "ppo.epochs": 1,
                                                      "ppo.target_kl": None, "rollout.max_context": 2048}))
        cost, snap = model_cost(trainer.models.policy.model), _snapshot(trainer)
        loaded = trainer.models.policy
        for t in turns:
            records = synthetic_dialogues(episodes, t, words, seed + t)
            eps = recorded_episodes(records, loaded, max_context=2048)
            samples: dict[str, list[dict]] = {layout: [] for layout in LAYOUTS}
            for _ in range(repeats):
                for layout in LAYOUTS:
                    _restore(trainer, snap)
                    metrics = _teacher_forced(trainer, eps, layout)
                    metrics["floor"] = teacher_forced_floor(cost, machine, metrics)
                    samples[layout].append(metrics)
            n_turns = sum(len(ep.actions) for ep in eps)
            for layout, runs in samples.items():
                row = _summary(f"{t} turns", layout, runs, n_turns)
                row["turns"], row["tokens_per_turn"] = t, _tokens_per_turn(eps)
                rows_out.append(row)
    return rows_out


def _tokens_per_turn(episodes: list) -> float:
    last = [ep.actions[-1] for ep in episodes]
    total = sum(len(a.history.input_ids) + len(a.response_ids) for a in last)
    return total / sum(len(ep.actions) for ep in episodes)


def _ms(x: float) -> str:
    return f"{x:.2f}"


def render(iteration: list[dict], growing: list[dict], machine: Machine, info: dict[str, str]) -> str:
    lines = ["## One pass per dialogue: per-turn rows vs packed", "",
             f"Machine: {info.get('cpu', '?')}, {info.get('threads', '?')} threads, torch {torch.__version__}; "
             f"commit {info.get('commit', '?')}; load average {info.get('load_average', '?')}. "
             f"Matmul rates measured in this run: torch.mm {machine.mm_gflops:.0f} GFLOP/s (the update's), best "
             f"{machine.flops / 1e9:.0f} GFLOP/s (oneDNN packed: the no-grad passes and the rollout).", ""]
    if iteration:
        lines += ["### One PPO iteration, by phase (seconds, median)", "",
                  "| layout | rollout | rows | score | reference | critic | advantages | update | total | floor | "
                  "total/floor | tokens read (score) | padding (update) | sequences (score) |",
                  "|---|" + "---:|" * 13]
        for r in iteration:
            p = r["phases"]
            lines.append(f"| {r['layout']} | " + " | ".join(_ms(p[k]) for k in ("rollout", *PHASES))
                         + f" | {_ms(r['total'])} | {_ms(r['floor'])} | {r['total'] / r['floor']:.2f}x"
                         f" | {r.get('batch/score_tokens', 0):.0f} | {r.get('batch/update_padding_share', 0):.1%}"
                         f" | {r.get('batch/score_sequences', 0):.0f} |")
        by = {r["layout"]: r for r in iteration}
        if set(by) == set(LAYOUTS):
            packed = by["packed"]
            lines += ["", f"Packed iteration: {by['padded']['total'] / packed['total']:.2f}x faster than padded per-turn "
                      f"rows (the layout before packing) and {by['turns']['total'] / packed['total']:.2f}x faster than "
                      f"padding-free per-turn rows (target 2.5x); {packed['total'] / packed['floor']:.2f}x its floor "
                      "(target 1.5x)."]
    if growing:
        lines += ["", "### Dialogues that grow: teacher-forced passes (score, reference, one update epoch)", "",
                  "| turns | tokens/turn | layout | seconds | per agent turn | floor per turn | x floor |",
                  "|---:|---:|---|---:|---:|---:|---:|"]
        for r in growing:
            per = (r["total"] - r["phases"]["rollout"]) / r["agent_turns"]
            lines.append(f"| {r['turns']} | {r['tokens_per_turn']:.0f} | {r['layout']} | {_ms(r['total'])} | "
                         f"{per * 1000:.0f} ms | {r['floor'] / r['agent_turns'] * 1000:.0f} ms | "
                         f"{r['total'] / r['floor']:.2f}x |")
        lines += ["", *_growth_summary(growing)]
    return "\n".join(lines) + "\n"


def _growth_summary(growing: list[dict]) -> list[str]:
    out = []
    for layout in LAYOUTS:
        rows = sorted((r for r in growing if r["layout"] == layout), key=lambda r: r["turns"])
        if len(rows) > 1:
            per = [r["total"] / r["agent_turns"] for r in rows]
            out.append(f"- {layout}: cost per agent turn at {rows[-1]['turns']} turns = {per[-1] / per[0]:.2f}x "
                       f"that at {rows[0]['turns']} (target for packed: within 1.3x).")
    return out


def packing_report(preset: str, machine: Machine, repeats: int, seed: int, turns: tuple[int, ...] = (1, 2, 4, 8)
                   ) -> str:
    """Both sections as Markdown (the `cagsr bench --sections packing` entry point)."""
    start = load_average()
    iteration = ppo_iteration(preset, machine, repeats, seed)
    growing = growing_dialogues(preset, machine, list(turns), 4, 18, repeats, seed)
    return render(iteration, growing, machine, run_info(start))
