"""`cagsr bench`: every engine measured side by side in one process, against the machine's floor.

    from cagsr.bench import BenchConfig, run
    print(run(BenchConfig()))                        # the full table (about 25 minutes on 2 CPU cores)
    .venv/bin/python benchmarks/engines.py --quick   # the same, smoke-test sizes

Sections (BenchConfig.sections): single turn; a dialogue whose history grows each turn; chain of
thought (each step continues the previous ones); the same single turn on the T5 model (lean and HF);
one PPO iteration of a training preset, by phase. Writes bench.md and bench.json to output_dir.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cagsr.bench.config import BenchConfig
from cagsr.bench.machine import describe_machine, measure_machine, model_cost
from cagsr.bench.sections import growing, ppo_phases, single_turn
from cagsr.bench.systems import build_systems
from cagsr.bench.table import render
from cagsr.bench.workload import bench_model

SINGLE, DIALOGUE = "single turn", "dialogue"


def _decoder_sections(cfg: BenchConfig, machine) -> tuple[list[dict], list[str]]:
    loaded = bench_model(cfg.model, cfg.device, cfg.dtype)
    cost = model_cost(loaded.model)
    systems, notes = build_systems(loaded, cfg.engines)
    rows = []
    if "single" in cfg.sections:
        rows += single_turn(cfg, loaded, systems, machine, cost, SINGLE)
    if "dialogue" in cfg.sections:
        rows += growing(
            cfg, loaded, systems, machine, cost, DIALOGUE, cfg.turns, cfg.new_tokens, cfg.user_tokens
        )
    if "cot" in cfg.sections:
        rows += growing(cfg, loaded, systems, machine, cost, "chain of thought (per step)", cfg.cot_steps,
                        cfg.step_tokens, 0)  # fmt: skip
    for system in systems:
        close = getattr(system.engine, "close", None) if hasattr(system, "engine") else None
        if callable(close):
            close()
    return rows, notes


def _t5_section(cfg: BenchConfig, machine) -> tuple[list[dict], list[str]]:
    loaded = bench_model(cfg.t5_model, cfg.device, cfg.dtype)
    systems, notes = build_systems(loaded, [e for e in cfg.engines if e != "vllm"])
    rows = single_turn(
        cfg, loaded, systems, machine, model_cost(loaded.model), f"single turn, {cfg.t5_model}"
    )
    return rows, notes


def run(config: BenchConfig) -> str:
    """Measure everything `config` asks for; return the Markdown report (also written to output_dir)."""
    cfg = config.effective()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))  # fmt: skip
    machine = measure_machine(device, getattr(torch, cfg.dtype))
    rows, notes = [], []
    if {"single", "dialogue", "cot"} & set(cfg.sections):
        r, n = _decoder_sections(cfg, machine)
        rows, notes = rows + r, notes + n
    if "t5" in cfg.sections:
        r, n = _t5_section(cfg, machine)
        rows, notes = rows + r, notes + n
    ppo = (
        ppo_phases(cfg, [e for e in ("hf", "lean", "vllm") if e in cfg.engines])
        if "ppo" in cfg.sections
        else []
    )
    info = describe_machine()
    report = render(cfg, info, machine, rows, ppo, list(dict.fromkeys(notes)), SINGLE, DIALOGUE)
    if cfg.output_dir:
        out = Path(cfg.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench.md").write_text(report, encoding="utf-8")
        payload = {"config": cfg.__dict__, "machine": info | machine.as_dict(), "rows": rows, "ppo": ppo}
        (out / "bench.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
    return report
