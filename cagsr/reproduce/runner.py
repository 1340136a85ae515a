"""Run every row of one of the paper's tables with N seeds, evaluate, and aggregate.

    result = reproduce("dialogue", "tiny", seeds=1, out=Path("runs/reproduce-dialogue-tiny"))

Folder layout (a rerun skips finished work, so an interrupted reproduction resumes):
    sft/                      the shared supervised model every row starts from
    reward_models/{synthetic,human}/
    rows/<row>/seed-<s>/      training run (config.yaml, metrics, model) and eval.json
    table.md table.json compute.json configs/ validity/
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from cagsr.config import from_dict, set_dotted
from cagsr.data.config import DataConfig
from cagsr.data.sources import load_records, split_records
from cagsr.evaluation.runner import EvalSettings, evaluate
from cagsr.models.registry import load_model
from cagsr.ppo.config import TrainJob
from cagsr.reproduce.context import ReproduceContext
from cagsr.reproduce.reward_models import ensure_reward_models
from cagsr.reproduce.tables import COT_ROWS, DIALOGUE_ROWS, SCALES, Row, data_source
from cagsr.sft.config import SFTJob


@dataclass
class Reproduction:
    table: str
    scale: str
    out: Path
    results: dict[str, list[dict]] = field(default_factory=dict)
    """Row name -> one eval summary per seed."""
    compute: dict[str, list[float]] = field(default_factory=dict)
    """Row name -> wall seconds (train + eval) per seed."""
    eval_rows: list[dict] = field(default_factory=list)
    """Every evaluated turn of every row and seed (for the validity report)."""
    unavailable: dict[str, str] = field(default_factory=dict)
    """Row name -> why it did not run (a config key this version lacks, no data for its reward model)."""
    stops: dict[str, list[dict]] = field(default_factory=dict)
    """Medium: row name -> per seed, when and why RL stopped (iterations, interval, KL to the reference)."""
    sft: list[dict] = field(default_factory=list)
    """Medium: per seed, the supervised model's steps, stop step and validation losses."""
    paired: list[dict] = field(default_factory=list)
    """Medium: one paired comparison per claim (interval, seed differences, verdict)."""
    by_position: list[dict] = field(default_factory=list)
    """Medium dialogue: the same comparisons for multi-turn at each agent-turn position (claims.POSITIONS)."""
    sets: dict[str, int] = field(default_factory=dict)
    """Medium: held-out set name -> number of items (the first is the main set)."""
    skipped: list[str] = field(default_factory=list)
    """Medium: 'row (seed s)' not started within --budget-minutes (a rerun of the command continues)."""


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _sft(spec: dict, data: dict, out: Path, progress: bool) -> Path:
    model_dir = out / "sft" / "model"
    if not (model_dir / "config.json").exists():
        job = from_dict(SFTJob, {"model": {"name": spec["model"]}, "data": data,
                                 "sft": {"max_steps": spec["sft_steps"], "batch_size": 4, "eval_every": 10_000,
                                         "samples": 0},
                                 "run": {"output_dir": str(out / "sft"), "progress": progress}})
        from cagsr.sft.trainer import run_sft

        shutil.rmtree(out / "sft", ignore_errors=True)
        run_sft(job)
    return model_dir


def train_job(row: Row, spec: dict, data: dict, model: str, seed: int, folder: Path, progress: bool,
              reward_models: dict[str, Path]) -> TrainJob:
    config: dict = {"model": {"name": model}, "data": data, "run": {"output_dir": str(folder), "seed": seed,
                                                                    "progress": progress}}
    for key, value in {**spec["ppo"], **row.overrides}.items():
        set_dotted(config, key, value)
    if row.reward_model:
        set_dotted(config, "reward.kind", "model")
        set_dotted(config, "reward.model_path", str(reward_models[row.reward_model]))
    return from_dict(TrainJob, config)


def row_problem(row: Row, overrides: dict, data: dict, model: str) -> str | None:
    """Why this row's TrainJob cannot be built (e.g. a reward key this version lacks), or None."""
    from cagsr.errors import ConfigError

    if not row.rl:
        return None
    config: dict = {"model": {"name": model}, "data": data}
    for key, value in {**overrides, **row.overrides}.items():
        set_dotted(config, key, value)
    try:
        from_dict(TrainJob, config)
    except ConfigError as err:
        return str(err).split(" (valid:")[0]
    return None


def _run_row(row: Row, seed: int, spec: dict, ctx: ReproduceContext) -> tuple[dict, list[dict], float]:
    folder = ctx.out / "rows" / slug(row.name) / f"seed-{seed}"
    start = time.perf_counter()
    model_path = ctx.sft[0]
    if row.rl:
        if not (folder / "model" / "config.json").exists():
            from cagsr.ppo.trainer import Trainer

            shutil.rmtree(folder, ignore_errors=True)
            job = train_job(row, spec, ctx.data, str(ctx.sft[0]), seed, folder, ctx.run["progress"],
                            ctx.reward_models)
            Trainer(job).train()
            # A row is rerun from scratch if interrupted, so its checkpoints (~0.5 GB each for
            # SmolLM2) are never read again: keep the final model only.
            shutil.rmtree(folder / "checkpoints", ignore_errors=True)
        model_path = folder / "model"
    eval_file = folder / "eval.json"
    if eval_file.exists():
        saved = json.loads(eval_file.read_text())
        return saved["summary"], saved["rows"], saved["seconds"]
    settings = EvalSettings(engine=row.eval_engine, **spec["eval"])
    loaded = load_model(str(model_path))
    shared = train_job(Row("shared"), spec, ctx.data, str(ctx.sft[0]), 0, ctx.out, False, {})
    report = evaluate(loaded, ctx.main_set, settings, ctx.consistency, ctx.embedder,
                      reward=table_reward(ctx, shared, loaded))
    seconds = time.perf_counter() - start
    folder.mkdir(parents=True, exist_ok=True)
    eval_file.write_text(json.dumps({"summary": report.summary, "rows": report.rows, "seconds": seconds}))
    return report.summary, report.rows, seconds


def table_reward(ctx: ReproduceContext, shared: TrainJob, loaded):
    """The reward every row of a table is scored with: the one the table's CAGSR multi-turn row trains on (the
    shared settings, salience fitted on the RL training records), so the reward column compares all rows
    under one reward; each row's own reward decides only when it stops (stopping.check_scores). Built once."""
    if ctx.table_reward is None:
        from cagsr.reproduce.stopping import job_reward

        ctx.table_reward = job_reward(shared, loaded)
    return ctx.table_reward


def reproduce(table: str, scale: str, seeds: int, out: Path, progress: bool = True) -> Reproduction:
    from cagsr.evaluation.metrics.consistency import ensure_consistency_classifier
    from cagsr.evaluation.metrics.embedding import Embedder

    spec, data = SCALES[scale], data_source(table, scale)
    records = load_records(from_dict(DataConfig, data))
    train, val = split_records(records, 0.1, 0)
    out.mkdir(parents=True, exist_ok=True)
    embedder, sft = Embedder(), _sft(spec, data, out, progress)
    consistency = (ensure_consistency_classifier(train[:400], name=f"reproduce-{table}", folder=out / "classifier")
                   if table == "dialogue" else None)
    ctx = ReproduceContext(out=out, data=data, sets={"heldout": (val or train)[: spec["eval_records"]]},
                           embedder=embedder, consistency=consistency,
                           reward_models=ensure_reward_models(table, train, out / "reward_models"),
                           run={"progress": progress}, sft={0: sft})
    result = Reproduction(table, scale, out)
    rows = DIALOGUE_ROWS if table == "dialogue" else COT_ROWS
    for row in rows:
        if row.reward_model and row.reward_model not in ctx.reward_models:
            continue  # e.g. no human-labelled data for this table: the row is reported as n/a
        if row.head_probe:
            result.unavailable[row.name] = "medium scales only (it fits a probe on rated replies first)"
            continue
        if problem := row_problem(row, spec["ppo"], data, spec["model"]):
            result.unavailable[row.name] = problem
            continue
        for seed in range(seeds):
            summary, eval_rows, seconds = _run_row(row, seed, spec, ctx)
            result.results.setdefault(row.name, []).append(summary)
            result.compute.setdefault(row.name, []).append(seconds)
            result.eval_rows += [{**r, "system": row.name, "seed": seed,
                                  "episode": f"{slug(row.name)}/{seed}/{r['episode']}"} for r in eval_rows]
    return result
