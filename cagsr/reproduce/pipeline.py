"""`cagsr reproduce`: every row of a table trained from supervised models and judged by paired statistics on
fixed held-out items, one pipeline for every scale (reproduce/plan.py): medium plans train each RL row until
its own reward has risen on stopping items, the others (tiny, small, full) a fixed number of iterations.

    rep = reproduce_table("dialogue", "medium-v2", Path("runs/reproduce-dialogue-medium-v2"))

Folder layout (every step is skipped when its output exists, so an interrupted run resumes):
    data/{pool,check,heldout,easy}.jsonl   splits, disjoint by record id (asserted on every start)
    sft/seed-<s>/                          supervised model s, trained until the validation loss flattened
    reward_models/  classifier/            trained on the pool only
    head_probe/seed-<s>/                   the head-probe row's probe, fitted on rated replies with model s
    check-baselines/<hash>.json            the supervised model's stopping-item scores per reward config
    rows/<row>/seed-<s>/run/               the PPO run (chunks resumed); stopping.jsonl, stop.json
    rows/<row>/seed-<s>/eval-<set>.json    the final held-out evaluation of that set (redone when the
                                           plan's evaluation settings change)
    table.md table.json paired.json compute.json configs/
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import shutil
import time
from pathlib import Path

from cagsr.config import from_dict, set_dotted
from cagsr.data.schema import MathProblem
from cagsr.evaluation.analysis.paired import item_means
from cagsr.ppo.config import TrainJob
from cagsr.reproduce.claims import METRICS, by_position, claims_for, judge, position_claims, position_set
from cagsr.reproduce.context import ReproduceContext
from cagsr.reproduce.heldout import assert_disjoint, make_splits
from cagsr.reproduce.plan import PLANS, ReproducePlan
from cagsr.reproduce.results import Reproduction, row_problem, slug, table_reward
from cagsr.reproduce.reward_models import ensure_head_probe, ensure_reward_models
from cagsr.reproduce.schedule import follow_up, schedule
from cagsr.reproduce.seconds import counted_seconds, saved_seconds
from cagsr.reproduce.stopping import check_scores, kl_record, train_until_risen
from cagsr.reproduce.tables import RATINGS, Row, table_rows
from cagsr.reproduce.workers import claim, join_helpers, start_helpers, stop_helpers


def _sft(plan: ReproducePlan, data: dict, out: Path, seed: int, ctx: ReproduceContext) -> tuple[Path, dict]:
    """Supervised model `seed`: its weights' folder and its record, training it when there is no record."""
    folder = out / "sft" / f"seed-{seed}"
    record_file = folder / "sft.json"
    if not record_file.exists():
        record_file.write_text(json.dumps(_train_sft(plan, data, folder, seed, ctx), indent=1))
    record = json.loads(record_file.read_text())
    _read_again(folder, record)
    return folder / "model", record


def _read_again(folder: Path, record: dict) -> None:
    """Put the record of the model's latest training again (if any) into its record, as "again"."""
    if (again := folder / "sft-again.json").exists():
        record["again"] = json.loads(again.read_text())


def _train_sft(plan: ReproducePlan, data: dict, folder: Path, seed: int, ctx: ReproduceContext) -> dict:
    from cagsr.sft.config import SFTJob
    from cagsr.sft.trainer import run_sft

    job = from_dict(SFTJob, {"model": {"name": plan.model}, "data": data, "sft": plan.sft,
                             "run": {"output_dir": str(folder), "seed": seed, **ctx.run}})
    shutil.rmtree(folder, ignore_errors=True)  # an interrupted SFT starts again (its record is written after)
    start = time.perf_counter()
    result = run_sft(job)
    return {"seed": seed, "max_steps": job.sft.max_steps, "stopped_at": result.stopped_at,
            "kept_step": result.kept_step, "reason": "flattened" if result.stopped_at else "max_steps",
            "val_losses": result.val_losses, "seconds": time.perf_counter() - start}


def _sft_weights(plan: ReproducePlan, ctx: ReproduceContext, seed: int) -> Path:
    """The weights of supervised model `seed`, trained again when only its record survived (records are
    kept in git, weights are not); the latest training again is recorded beside the first, which the table
    keeps, with the seconds of any earlier ones."""
    sft_seed = seed % plan.sft_seeds
    model = ctx.sft[sft_seed]
    if model.exists():
        return model
    with claim(model.parent, wait=True):  # another worker may be training it again: wait, then use its weights
        if not model.exists():
            _train_sft_again(plan, ctx, sft_seed, model)
    return model


def _train_sft_again(plan: ReproducePlan, ctx: ReproduceContext, sft_seed: int, model: Path) -> None:
    """Train supervised model `sft_seed` again into `model` (its weights were lost, its record kept)."""
    scratch = model.parent.with_name(model.parent.name + "-again")
    again = _train_sft(plan, ctx.data, scratch, sft_seed, ctx)
    (scratch / "model").rename(model)
    record = model.parent / "sft-again.json"
    if record.exists():  # trained again before, on a machine since lost: that time was spent too
        earlier = json.loads(record.read_text())
        again["earlier_seconds"] = earlier["seconds"] + earlier.get("earlier_seconds", 0.0)
    record.write_text(json.dumps(again, indent=1))
    shutil.rmtree(scratch)
    ctx.sft_records[sft_seed]["again"] = again  # the table's record, shown beside it


def _shared_config(plan: ReproducePlan, ctx: ReproduceContext) -> dict:
    """The TrainJob settings every RL row shares (the CAGSR multi-turn row's, before its own overrides)."""
    config: dict = {"data": ctx.data}
    for key, value in plan.ppo.items():
        set_dotted(config, key, value)
    return config


def _job(row: Row, plan: ReproducePlan, ctx: ReproduceContext, seed: int, folder: Path, iterations: int) -> TrainJob:
    config: dict = {"model": {"name": str(_sft_weights(plan, ctx, seed))}, "data": ctx.data,
                    "run": {"output_dir": str(folder / "run"), "seed": seed, **ctx.run}}
    # With a stopping rule a checkpoint ends every chunk (the next one resumes from it); without, the run's own.
    chunks = {"ppo.iterations": iterations, "checkpoints.every": plan.stop.check_every} if plan.stop else {}
    for key, value in {**plan.ppo, **row.overrides, **chunks}.items():
        set_dotted(config, key, value)
    if row.reward_model:
        set_dotted(config, "reward.kind", "model")
        set_dotted(config, "reward.model_path", str(ctx.reward_models[row.reward_model]))
    if row.head_probe:  # fitted with this seed's supervised model, the reference the reward is read from
        sft_seed = seed % plan.sft_seeds
        probe = ensure_head_probe(_sft_weights(plan, ctx, seed), ctx.out / "head_probe" / f"seed-{sft_seed}", ctx.run)
        config.setdefault("reward", {}).update({"kind": "head_probe", "reader": "reference", "head_probe": probe})
    return from_dict(TrainJob, config)


def _train(row: Row, plan: ReproducePlan, ctx: ReproduceContext, seed: int, folder: Path, evaluated: bool) -> dict:
    """The row's stop record, training it first (resuming a started run) when there is none, or when
    there is one but neither the weights nor every evaluation of them survived."""
    stop = folder / "stop.json"
    if stop.exists() and (evaluated or (folder / "run" / "model").exists()):
        return json.loads(stop.read_text())
    stop.unlink(missing_ok=True)  # stopped, but its weights are gone before it was evaluated: train again
    if plan.stop is None:
        return _train_fixed(_job(row, plan, ctx, seed, folder, 0), folder)
    job = _job(row, plan, ctx, seed, folder, 1)
    reward = (job.reward, job.salience, job.attention, job.rollout.max_steps)  # what the row's reward depends on
    model = ctx.reward_models.get(row.reward_model) if row.reward_model else None

    def scorer(path: Path) -> dict[str, float]:
        return check_scores(path, ctx.check, plan.check_eval, job, model)

    # The supervised model's greedy scores under this row's reward, shared by rows and seeds that agree.
    # The key names the model relative to the output folder, so a moved or cloned folder keeps its baselines.
    sft_model = ctx.sft[seed % plan.sft_seeds]
    name = str(sft_model.relative_to(ctx.out))
    key = hashlib.sha256(repr((name, reward, row.reward_model)).encode()).hexdigest()[:16]
    base_file = ctx.out / "check-baselines" / f"{key}.json"
    if not base_file.exists():
        base_file.parent.mkdir(parents=True, exist_ok=True)
        part = base_file.with_suffix(f".{os.getpid()}.part")  # two workers may score the same baseline at once
        part.write_text(json.dumps(scorer(_sft_weights(plan, ctx, seed))))
        os.replace(part, base_file)
    baseline = json.loads(base_file.read_text())
    return train_until_risen(lambda n: _job(row, plan, ctx, seed, folder, n), folder, scorer, baseline, plan.stop)


def _train_fixed(job: TrainJob, folder: Path) -> dict:
    """A plan without a stopping rule: the row trains its ppo.iterations (an interrupted run starts again);
    its record says so, as a stopped row's says when it stopped."""
    from cagsr.ppo.trainer import Trainer

    shutil.rmtree(folder / "run", ignore_errors=True)
    Trainer(job).train()
    shutil.rmtree(folder / "run" / "checkpoints", ignore_errors=True)  # only the final model is read again
    record = {"reason": "fixed", "iterations": job.ppo.iterations, **kl_record(folder / "run", 0)}
    (folder / "stop.json").write_text(json.dumps(record, indent=1))
    return record


def _saved_evaluation(folder: Path, name: str, items: list, plan: ReproducePlan) -> dict | None:
    """The saved evaluation of set `name`, unless there is none or it ran with other settings."""
    from cagsr.evaluation.runner import EvalSettings

    wanted = EvalSettings(**plan.eval).applying_to(_kind(items))
    path = folder / f"eval-{name}.json"
    saved = json.loads(path.read_text()) if path.exists() else None
    return saved if saved and saved.get("settings") == wanted else None


def _kind(items: list) -> str:
    return "math" if isinstance(items[0], MathProblem) else "dialogue"


def _evaluate(model: Path, folder: Path, name: str, items: list, plan: ReproducePlan, ctx: ReproduceContext) -> dict:
    if saved := _saved_evaluation(folder, name, items, plan):
        return saved
    from cagsr.evaluation.runner import EvalSettings, evaluate
    from cagsr.models.registry import load_model

    start, settings = time.perf_counter(), EvalSettings(**plan.eval)
    loaded = load_model(str(model))
    report = evaluate(loaded, items, settings, ctx.consistency, ctx.embedder,
                      reward=table_reward(ctx, from_dict(TrainJob, _shared_config(plan, ctx)), loaded))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"eval-{name}.json").write_text(json.dumps({
        "summary": report.summary, "rows": report.rows, "settings": settings.applying_to(_kind(items)),
        "seconds": time.perf_counter() - start}))
    return json.loads((folder / f"eval-{name}.json").read_text())


def _context(table: str, plan: ReproducePlan, out: Path, threads: int | None, progress: bool) -> ReproduceContext:
    from cagsr.data.config import DataConfig
    from cagsr.data.sources import load_records
    from cagsr.evaluation.metrics.consistency import ensure_consistency_classifier
    from cagsr.evaluation.metrics.embedding import Embedder

    splits = make_splits(table, plan, out / "data")
    data = {"path": str(splits.pool)}
    pool = load_records(DataConfig(**data))  # what SFT, the reward models and RL read
    assert_disjoint({"pool": pool, "check": splits.check, **splits.sets})  # against what is judged
    embedder = Embedder()  # built in this order before too: the classifier and reward models train after it
    consistency = (ensure_consistency_classifier(pool[:400], name=f"reproduce-{table}", folder=out / "classifier")
                   if table == "dialogue" else None)
    return ReproduceContext(out=out, data=data, sets=splits.sets, check=splits.check, embedder=embedder,
                            consistency=consistency,
                            reward_models=ensure_reward_models(table, pool, out / "reward_models"),
                            run={"progress": progress, **({"threads": threads} if threads else {})})


def reproduce_table(table: str, scale: str, out: Path, progress: bool = True, threads: int | None = None,
                    budget_minutes: float = 0.0, seeds: int | None = None, render_only: bool = False,
                    workers: int = 1, helper: bool = False) -> Reproduction:
    """Every row and seed of the table; with a budget, a row-seed that has not finished before is started
    only while the time spent plus the longest row-seed so far fits (the others are listed as skipped);
    `render_only` starts none (the table of the row-seeds finished so far).
    `seeds`: every row's seed count under a plan without a stopping rule (medium plans fix their own).
    `workers` > 1: that many processes share the row-seeds (reproduce/workers.py); `helper`: this is one of
    the helpers, which works ahead and returns without judging anything."""
    began = time.perf_counter()
    plan = PLANS[scale]
    if seeds and plan.stop is None:
        plan = dataclasses.replace(plan, seeds_core=seeds, seeds_other=seeds)
    out.mkdir(parents=True, exist_ok=True)
    ctx = _context(table, plan, out, threads, progress)
    rows = table_rows(table)
    rep = Reproduction(table, scale, out, sets={k: len(v) for k, v in ctx.sets.items()}, workers=workers)
    for seed in range(plan.sft_seeds):
        if render_only and not (out / "sft" / f"seed-{seed}" / "sft.json").exists():
            continue  # a render trains no model; no row from this one has finished either
        ctx.sft[seed], ctx.sft_records[seed] = _sft(plan, ctx.data, out, seed, ctx)
        rep.sft.append(ctx.sft_records[seed])
    budget = budget_minutes * 60 or float("inf")
    if helper:
        _Pass(plan, ctx, rep, began, budget, wait=False).run(rows)
        return rep
    helpers = []
    try:
        if workers > 1 and not render_only:  # everyone works ahead; then this process reads the table in order
            helpers = start_helpers(workers - 1, _help, {"table": table, "scale": scale, "out": out,
                                                          "threads": threads, "budget_minutes": budget_minutes,
                                                          "seeds": seeds})
            ahead = Reproduction(table, scale, out, sets=rep.sets)  # read again, in order, by the next pass
            _Pass(plan, ctx, ahead, began, budget, wait=False).run(rows)
        _Pass(plan, ctx, rep, began, budget, wait=True, render_only=render_only).run(rows)
    except BaseException:
        stop_helpers(helpers)
        raise
    join_helpers(helpers)
    for seed, record in ctx.sft_records.items():  # a helper may have trained a model again
        _read_again(out / "sft" / f"seed-{seed}", record)
    for name in dict.fromkeys(r.name for r in rows):  # in table order: table.json reads the same every time
        if name not in rep.results and name not in rep.unavailable:
            rep.unavailable[name] = "not finished; a rerun continues"
    rep.paired = judge(claims_for(table, list(ctx.sets), set(rep.results)), rep.items, plan.n_boot, plan.sft_seeds)
    if table == "dialogue":
        main = next(iter(ctx.sets))
        rep.by_position = judge(position_claims(table, main, set(rep.results)), rep.items, plan.n_boot,
                                plan.sft_seeds)
    return rep


def _help(*, table: str, scale: str, out: Path, threads: int | None, budget_minutes: float,
          seeds: int | None) -> None:
    """A helper process's work: the row-seeds no other process holds (spawned, so threads are set here)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    reproduce_table(table, scale, out, progress=False, threads=threads, budget_minutes=budget_minutes,
                    seeds=seeds, helper=True)


@dataclasses.dataclass
class _Pass:
    """One pass over the table's row-seeds in schedule order, then the further seeds of one-seed rows whose
    first comparison was decided. wait True: a row-seed another process holds is waited for, then read
    (the pass that writes the table); wait False: it is skipped (working ahead), and one whose supervised
    model another process is training again is left to the end of the pass rather than waited for."""

    plan: ReproducePlan
    ctx: ReproduceContext
    rep: Reproduction
    began: float
    budget_seconds: float
    wait: bool
    render_only: bool = False
    longest: float = 0.0
    deferred: list[tuple[Row, int]] = dataclasses.field(default_factory=list)

    def run(self, rows: list[Row]) -> None:
        for row, seed in schedule(rows, self.plan):
            self.attempt(row, seed)
        for row in follow_up(rows, self.rep, self.rep.items, self.plan, list(self.ctx.sets)):
            for seed in range(1, self.plan.seeds_core):
                self.attempt(row, seed)
        deferred, self.deferred = self.deferred, []
        for row, seed in deferred:  # by now their supervised models are trained, or this process waits for them
            self.attempt(row, seed, defer=False)

    def attempt(self, row: Row, seed: int, defer: bool = True) -> None:
        plan, ctx, rep = self.plan, self.ctx, self.rep
        if why := _unavailable(row, plan, ctx):
            rep.unavailable[row.name] = why
            return
        folder = rep.out / "rows" / slug(row.name) / f"seed-{seed}"
        done = _finished(folder, plan, ctx)
        over = time.perf_counter() - self.began + self.longest > self.budget_seconds
        if not done and (self.render_only or over):
            rep.skipped.append(f"{row.name} (seed {seed})")
            return
        if done:  # reloaded only: no claim needed, no cost counted
            _row_seed(row, seed, plan, ctx, rep, folder, done=True)
            return
        with claim(folder, wait=self.wait) as held:
            if not held:
                return  # another process is working on it
            start = time.perf_counter()
            done = _finished(folder, plan, ctx)  # another process may have finished it while this one waited
            if not done and defer and not self.wait and _sft_busy(plan, ctx, seed):
                self.deferred.append((row, seed))  # waiting would idle this process for a whole SFT run
                return
            _row_seed(row, seed, plan, ctx, rep, folder, done)
            if not done:
                self.longest = max(self.longest, time.perf_counter() - start)


def _sft_busy(plan: ReproducePlan, ctx: ReproduceContext, seed: int) -> bool:
    """Whether another process is training supervised model `seed` again (it holds the model folder's claim)."""
    model = ctx.sft[seed % plan.sft_seeds]
    if model.exists():
        return False
    with claim(model.parent, wait=False) as held:
        return not held


def _finished(folder: Path, plan: ReproducePlan, ctx: ReproduceContext) -> bool:
    """Whether the row-seed has every held-out evaluation, made with the plan's settings."""
    return all(_saved_evaluation(folder, name, set_items, plan) for name, set_items in ctx.sets.items())


def _unavailable(row: Row, plan: ReproducePlan, ctx: ReproduceContext) -> str | None:
    """Why the row cannot run here (no reward-model data, no rated replies, a config this version lacks)."""
    if row.reward_model and row.reward_model not in ctx.reward_models:
        return f"no data for the {row.reward_model} reward model"
    if row.head_probe and not RATINGS.exists():
        return f"no rated replies ({RATINGS})"
    return row_problem(row, plan.ppo, ctx.data, plan.model)


def _row_seed(row: Row, seed: int, plan: ReproducePlan, ctx: ReproduceContext, rep: Reproduction,
              folder: Path, done: bool) -> None:
    with counted_seconds(folder, count=not done):
        _train_and_evaluate(row, seed, plan, ctx, rep, folder, done)
    rep.compute.setdefault(row.name, []).append(saved_seconds(folder))


def _train_and_evaluate(row: Row, seed: int, plan: ReproducePlan, ctx: ReproduceContext, rep: Reproduction,
                        folder: Path, done: bool) -> None:
    if row.rl:
        rep.stops.setdefault(row.name, []).append(_train(row, plan, ctx, seed, folder, done))
        model = folder / "run" / "model"
    else:  # a finished row only reloads its evaluations: no weights needed
        model = ctx.sft[seed % plan.sft_seeds] if done else _sft_weights(plan, ctx, seed)
    summary: dict = {}
    for i, (name, set_items) in enumerate(ctx.sets.items()):
        saved = _evaluate(model, folder, name, set_items, plan, ctx)
        prefix = "" if i == 0 else f"{name}/"
        summary |= {f"{prefix}{k}": v for k, v in saved["summary"].items()}
        for metric in METRICS[rep.table]:
            rep.items.setdefault((row.name, name, metric), []).append(item_means(saved["rows"], metric))
        if i == 0:  # the validity report and the by-position comparisons read the main set
            rep.eval_rows += [{**r, "system": row.name, "seed": seed,
                               "episode": f"{slug(row.name)}/{seed}/{r['episode']}"} for r in saved["rows"]]
            positions = by_position(saved["rows"]) if rep.table == "dialogue" else {}
            for (label, rows), metric in itertools.product(positions.items(), METRICS[rep.table]):
                rep.items.setdefault((row.name, position_set(name, label), metric), []).append(item_means(rows, metric))
    rep.results.setdefault(row.name, []).append(summary)
