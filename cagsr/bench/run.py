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
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from cagsr.bench.config import BenchConfig
from cagsr.bench.estimators import estimators_report
from cagsr.bench.machine import describe_machine, measure_machine, model_cost
from cagsr.bench.packing import packing_report
from cagsr.bench.sections import growing, ppo_phases, single_turn
from cagsr.bench.systems import build_systems
from cagsr.bench.table import render
from cagsr.bench.workload import bench_model

SINGLE, DIALOGUE = "single turn", "dialogue"


def _decoder_sections(cfg: BenchConfig, machine) -> Iterator[tuple[list[dict], list[str]]]:
    """Yield (rows, notes) per section, so the report can be written after each one."""
    loaded = bench_model(cfg.model, cfg.device, cfg.dtype)
    cost = model_cost(loaded.model)
    systems, notes = build_systems(loaded, cfg.engines)
    try:
        if "single" in cfg.sections:
            yield single_turn(cfg, loaded, systems, machine, cost, SINGLE), notes
        if "dialogue" in cfg.sections:
            yield growing(cfg, loaded, systems, machine, cost, DIALOGUE, cfg.turns, cfg.new_tokens,
                          cfg.user_tokens), notes  # fmt: skip
        if "cot" in cfg.sections:
            yield growing(cfg, loaded, systems, machine, cost, "chain of thought (per step)", cfg.cot_steps,
                          cfg.step_tokens, 0), notes  # fmt: skip
    finally:
        for system in systems:
            close = getattr(getattr(system, "engine", None), "close", None)
            if callable(close):
                close()


def _t5_section(cfg: BenchConfig, machine) -> Iterator[tuple[list[dict], list[str]]]:
    loaded = bench_model(cfg.t5_model, cfg.device, cfg.dtype)
    systems, notes = build_systems(loaded, [e for e in cfg.engines if e != "vllm"])
    yield (
        single_turn(cfg, loaded, systems, machine, model_cost(loaded.model), f"single turn, {cfg.t5_model}"),
        notes,
    )


def _sections(cfg: BenchConfig, machine) -> Iterator[tuple[list[dict], list[str], list[dict]]]:
    """(timing rows, notes, PPO rows) of each section in turn."""
    if {"single", "dialogue", "cot"} & set(cfg.sections):
        for rows, notes in _decoder_sections(cfg, machine):
            yield rows, notes, []
    if "t5" in cfg.sections:
        for rows, notes in _t5_section(cfg, machine):
            yield rows, notes, []
    if "ppo" in cfg.sections:
        # vLLM is left out here: a second in-process vLLM engine would double its memory reservation.
        yield [], [], ppo_phases(cfg, [e for e in ("hf", "lean") if e in cfg.engines])


def run(config: BenchConfig) -> str:
    """Measure everything `config` asks for; return the Markdown report (also written to output_dir after
    every section, so an interrupted run keeps what it measured)."""
    cfg = config.effective()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
        # vLLM's CPU worker binds its own OpenMP threads: give it the same cores (unless set by the user).
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{cfg.threads - 1}")
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))  # fmt: skip
    load_at_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    machine = measure_machine(device, getattr(torch, cfg.dtype))
    rows, notes, ppo, report, packing = [], [], [], "", ""
    if "packing" in cfg.sections:
        packing = "\n" + packing_report(cfg.ppo_preset, machine, cfg.repeats, cfg.seed)
    if "estimators" in cfg.sections:  # a report of its own, like packing's
        packing += "\n" + estimators_report(machine, min(cfg.repeats, 3), cfg.seed)
    for section_rows, section_notes, section_ppo in _sections(cfg, machine):
        rows, notes, ppo = rows + section_rows, notes + section_notes, ppo + section_ppo
        info = describe_machine()
        info["load_average"] = f"{load_at_start} at start, {info['load_average']} now"
        report = render(cfg, info, machine, rows, ppo, list(dict.fromkeys(notes)), SINGLE, DIALOGUE) + packing
        if cfg.output_dir:
            _write(Path(cfg.output_dir), report, {"config": cfg.__dict__, "machine": info | machine.as_dict(),
                                                  "rows": rows, "ppo": ppo})  # fmt: skip
    if not report and packing and cfg.output_dir:
        _write(Path(cfg.output_dir), packing, {"config": cfg.__dict__, "machine": machine.as_dict()})
    return report or packing


def _write(out: Path, report: str, payload: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.md").write_text(report, encoding="utf-8")
    (out / "bench.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
