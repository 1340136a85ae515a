"""The benchmark's sections: single turn, a growing dialogue, chain of thought, and one PPO iteration.

    .venv/bin/python benchmarks/engines.py --quick --sections single dialogue

Shapes: B prompts, K candidates, N prompt tokens, S new tokens, U user-message tokens.

Rows of a section are measured side by side and interleaved (repeat r of every system, then repeat r+1;
turn t of every system, then turn t+1), so slow drifts of a shared machine hit all rows alike.
A row is a dict: section, system, generate / capture / total seconds, tokens per row, floor seconds.
"""

from __future__ import annotations

import random
import statistics
import tempfile

from cagsr.bench.config import BenchConfig
from cagsr.bench.machine import Machine, ModelCost
from cagsr.bench.workload import chat_prompts, user_message
from cagsr.rollout.engines.base import SamplingConfig


def _sampling(cfg: BenchConfig, new_tokens: int) -> SamplingConfig:
    """The paper's sampling (temperature 0.8, top-k 50, top-p 0.95)."""
    return SamplingConfig(temperature=0.8, top_k=50, top_p=0.95, max_new_tokens=new_tokens)


def _rows(section: str, system, timings: list, floor: float, per: str) -> list[dict]:
    """One row (or two: engine, engine + capture) from a system's timings, medians or means per turn."""
    agg = statistics.median if per == "median" else statistics.fmean
    gen, cap = agg(t.generate for t in timings), agg(t.capture for t in timings)
    tokens = statistics.fmean(t.tokens for t in timings)
    base = {"section": section, "floor": floor, "tokens": tokens, "samples": len(timings), "per": per}
    capture = getattr(system, "capture", False)
    rows = [base | {"system": system.name, "generate": gen, "capture": 0.0, "total": gen}]
    if capture:
        rows.append(
            base | {"system": f"{system.name} + capture", "generate": gen, "capture": cap, "total": gen + cap}
        )
    return rows


def single_turn(cfg: BenchConfig, loaded, systems: list, machine: Machine, cost: ModelCost, section: str
                ) -> list[dict]:  # fmt: skip
    """B prompts of N tokens, S new tokens; median of `repeats`."""
    prompts = chat_prompts(loaded, cfg.batch, cfg.prompt_tokens, cfg.seed)
    sampling = _sampling(cfg, cfg.new_tokens)
    for system in systems:  # warm-up: first-call costs (oneDNN packing, vLLM graphs) are not a turn's
        system.turn([p[-8:] for p in prompts[:1]], _sampling(cfg, 2), cfg.seed, candidates=cfg.candidates)
    timings: dict[str, list] = {s.name: [] for s in systems}
    for rep in range(cfg.repeats):
        for system in systems:
            _, timing = system.turn(prompts, sampling, cfg.seed + rep, candidates=cfg.candidates)
            timings[system.name].append(timing)
    floor = cost.floor(machine, cfg.batch, cfg.candidates, cfg.prompt_tokens, cfg.new_tokens)
    return [row for s in systems for row in _rows(section, s, timings[s.name], floor, "median")]


def growing(cfg: BenchConfig, loaded, systems: list, machine: Machine, cost: ModelCost, section: str,
            turns: int, new_tokens: int, user_tokens: int) -> list[dict]:  # fmt: skip
    """Multi-turn: each turn's prompt = the previous prompt + the reply + U user tokens (U = 0: chain of thought).

    Engines that take `sessions` keep each episode's cache; the others re-read the whole history.
    The floor of a turn after the first only prefills what the cache cannot hold: U + 1 tokens.
    """
    first = chat_prompts(loaded, cfg.batch, cfg.prompt_tokens, cfg.seed)
    sampling = _sampling(cfg, new_tokens)
    state = {s.name: [list(p) for p in first] for s in systems}
    keys = {s.name: [f"{section}-{s.name}-{b}" for b in range(cfg.batch)] for s in systems}
    timings: dict[str, list] = {s.name: [] for s in systems}
    floors, length = [], cfg.prompt_tokens
    for turn in range(turns):
        new = cfg.prompt_tokens if turn == 0 else user_tokens + 1
        floors.append(cost.floor(machine, cfg.batch, cfg.candidates, new, new_tokens, cached=length - new))
        rng = random.Random(cfg.seed * 1000 + turn)
        user = [user_message(loaded, user_tokens, rng) if user_tokens else [] for _ in range(cfg.batch)]
        for system in systems:
            replies, timing = system.turn(state[system.name], sampling, cfg.seed + turn, keys[system.name],
                                          candidates=cfg.candidates)
            timings[system.name].append(timing)
            state[system.name] = [
                p + r + u for p, r, u in zip(state[system.name], replies, user, strict=True)
            ]
        length += new_tokens + user_tokens
    for system in systems:
        system.end(keys[system.name])
    floor = statistics.fmean(floors)
    return [row for s in systems for row in _rows(section, s, timings[s.name], floor, "mean")]


def ppo_phases(cfg: BenchConfig, engines: list[str]) -> list[dict]:
    """One PPO iteration of `cfg.ppo_preset` per rollout engine, timed by the trainer's own phases.

    Uses cagsr.ppo.trainer.Trainer (iteration() returns time/<phase> metrics). A failure is reported as
    a row, not raised: this section depends on the trainer, which evolves separately.
    """
    rows = []
    for engine in engines:
        try:
            from cagsr.config import load_job
            from cagsr.ppo.config import TrainJob
            from cagsr.ppo.trainer import Trainer

            with tempfile.TemporaryDirectory(prefix="cagsr-bench-ppo-") as out:
                overrides = {"run.output_dir": out, "rollout.engine": engine, "run.progress": False,
                             "run.seed": cfg.seed, "ppo.iterations": 1}  # fmt: skip
                trainer = Trainer(load_job(TrainJob, cfg.ppo_preset, overrides))
                metrics = trainer.iteration()
            phases = {k.removeprefix("time/"): float(v) for k, v in metrics.items() if k.startswith("time/")}
            rows.append({"section": f"ppo ({cfg.ppo_preset})", "system": engine, "phases": phases,
                         "total": sum(phases.values())})  # fmt: skip
        except Exception as err:  # noqa: BLE001 - reported in the table instead
            rows.append(
                {
                    "section": f"ppo ({cfg.ppo_preset})",
                    "system": engine,
                    "error": f"{type(err).__name__}: {err}",
                }
            )
    return rows
