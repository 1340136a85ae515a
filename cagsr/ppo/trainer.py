"""The PPO trainer: orchestrates the stages; every computation lives in its own module.

One iteration (`Trainer.iteration`):
  1. rollout     episodes from the policy and the user simulator             (time/rollout)
  2. rows        every turn a row with named masks (scoring/rows.py)         (time/rows)
  3. score       one capture pass per packed dialogue: log-probs, components (time/score)
     reference   log-probs of the frozen reference for the KL penalty        (time/reference)
     critic      V(H_t) from the separate value model                        (time/critic)
     reward      components and reward parts -> turn rewards [E, T]          (time/reward)
  4. advantages  turn weights, returns and advantages, broadcast to tokens   (time/advantages)
  5. update      PPO epochs over shuffled minibatches of episodes            (time/update)
  6. report      metrics and samples; held-out reward and checkpoints in `step`  (time/report)

    cagsr train --config presets/dialogue.yaml
    torchrun --nproc_per_node 2 -m cagsr train --config presets/dialogue.yaml     # data parallel

Under a launcher each rank rolls out and scores its contiguous share of the global batch of
rollout.episodes; the episodes and scores are gathered so advantages (and their whitening) are
computed on the whole batch on every rank; the update deals each minibatch's episodes over the
ranks and sums their gradients. Rank 0 alone writes logs, samples, checkpoints and the final model.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from cagsr.config import to_dict
from cagsr.data.sources import corpus_texts, load_records, record_kind, split_records
from cagsr.distributed import (
    all_gather_object,
    any_true,
    init_distributed,
    main_first,
    reduce_max_metrics,
    shard_bounds,
)
from cagsr.errors import CagsrError, ConfigError
from cagsr.ppo.config import TrainJob
from cagsr.ppo.experience import Experience, assemble
from cagsr.ppo.guards import (
    NanGuard,
    TruncationNotice,
    batch_is_finite,
    nonfinite_reason,
    run_folder_write,
    writer_threads_report_one_line,
)
from cagsr.ppo.heldout_eval import answer_held_out, evaluate_heldout
from cagsr.ppo.metrics import (
    experience_metrics,
    masked_turn_mean,
    sample_records,
)
from cagsr.ppo.preflight import check_train_job
from cagsr.ppo.setup import build_models, build_rollout_parts, sync_whole_models, trained_share
from cagsr.ppo.state import (
    TrainState,
    check_disk_space,
    checkpoint_bytes,
    load_state,
    save_state,
    trim_logs,
)
from cagsr.ppo.update import ppo_update
from cagsr.reward.combine import build_turn_reward
from cagsr.reward.config import resolve_reward
from cagsr.reward.definition import RewardDefinition, define_reward
from cagsr.rollout.runner import rollout
from cagsr.scoring.layout import LayoutStats, unpacked_turns
from cagsr.scoring.passes import (
    ScoredPart,
    merge_parts,
    reference_pass,
    rows_values,
    score_rows,
)
from cagsr.scoring.rows import RowBatch, build_rows
from cagsr.utils.logging import MetricLogger
from cagsr.utils.run import check_writable, lock_run_dir, prepare_run_dir, seed_everything


@dataclass
class TrainResult:
    run_dir: Path
    """The run folder (config, metrics, TensorBoard, checkpoints, samples, final model)."""
    history: list[dict]
    """Metrics of every iteration."""
    stopped_early: bool = False
    """True when a SIGTERM stopped the run after saving a checkpoint."""
    is_main: bool = True
    """False on ranks other than 0 (they write nothing)."""
    table: str = ""
    """The before/after table of the held-out metrics (Markdown; also in RUN/table.md); empty until written."""
    replies: str = ""
    """The same held-out prompts answered before and after training, as plain text (also in RUN/table.md)."""
    report: Path | None = None
    """RUN/report.html, when it was drawn."""


class Trainer:
    def __init__(self, job: TrainJob, resume: Path | None = None):
        self.job = job
        self.dist = init_distributed(job.model.device)
        if job.rollout.episodes % self.dist.world:
            raise ConfigError(
                f"rollout.episodes: the global batch of {job.rollout.episodes} episodes must divide "
                f"evenly over {self.dist.world} processes"
            )
        seed_everything(job.run.seed)
        if job.run.threads:
            torch.set_num_threads(job.run.threads)
        # Everything that can reject the input runs before the run folder exists: nothing half-written.
        records = load_records(job.data)
        self.kind = record_kind(records)
        self.train_records, self.val_records = split_records(records, job.data.val_fraction, job.data.seed)
        build_turn_reward(job.reward)  # a bad reward part fails before the model loads
        self.models = build_models(job, self.dist)
        check_train_job(job, self.models.policy, records)  # model-dependent settings, still before the run folder
        job.reward = resolve_reward(job.reward, self.models.policy.is_encoder_decoder)  # sink tokens per model kind
        self.trained_share = trained_share(self.models.learner)  # fixed once the learner is built
        self.engine, self.simulator = build_rollout_parts(job, self.models)
        self.use_definition(define_reward(
            job.reward, job.salience, job.attention, max_steps=job.rollout.max_steps,
            corpus=corpus_texts(self.train_records), encoder_decoder=self.models.policy.is_encoder_decoder))
        self.run_dir = self._run_folder(resume)
        self.state = TrainState.fresh(job.run.seed, len(self.train_records))
        self.generator = torch.Generator().manual_seed(job.run.seed)
        if resume:
            load_state(self, resume)  # the reward definition of the checkpoint included
            main_first(self.dist, lambda: trim_logs(self.run_dir, self.state.iteration))
        if self.dist.is_main:
            with run_folder_write(self.run_dir, "reward definition"):
                self.definition.save(self.run_dir)
        self.logger = MetricLogger(
            self.run_dir,
            enabled=self.dist.is_main,
            wandb=job.run.wandb,
            config=to_dict(job),
            resume_step=self.state.iteration if resume else None,
        )
        self._stop_requested = False
        self.nan_guard = NanGuard(job.ppo.max_bad_batches, warn=self.dist.is_main)
        self.truncation_notice = TruncationNotice(enabled=self.dist.is_main)

    def use_definition(self, definition: RewardDefinition) -> None:
        """The reward this run trains on: salience, capture settings, the reward stage and the turn weights."""
        self.definition = definition
        self.salience = definition.salience_marker()
        self.turn_reward = definition.stage

    def _run_folder(self, resume: Path | None) -> Path:
        """Check (resume) or create the run folder on rank 0, after a disk-space check for checkpoints."""
        target = Path(resume or self.job.run.output_dir or "runs")

        def prepare() -> Path:
            check_disk_space(target, checkpoint_bytes(self.models))
            if resume:
                check_writable(target)
                lock_run_dir(target)  # a second process resuming the same run fails at once
                return target
            return prepare_run_dir(self.job.run.output_dir, "train", self.job)

        return main_first(self.dist, prepare)

    # -- the pipeline -------------------------------------------------------------------------
    def rollout_batch(self) -> tuple[list, int, int]:
        """The global batch's episodes on every rank, and [lo, hi) of those this rank generated."""
        job, ctx = self.job, self.dist
        size = job.rollout.group_size  # each record rolled out `size` times, its group side by side
        records = [r for r in self.state.next_records(self.train_records, job.rollout.episodes // size)
                   for _ in range(size)]
        lo, hi = shard_bounds(len(records), ctx.rank, ctx.world)
        with self.truncation_notice():
            mine = rollout(
                records[lo:hi],
                self.models.policy,
                self.engine,
                self.simulator,
                job.rollout,
                self.state.rollout_rng(ctx.rank),
            )
        return [ep for part in all_gather_object(ctx, mine) for ep in part], lo, hi

    def score(self, rows: RowBatch, episodes: list, lo: int, hi: int, metrics: dict) -> ScoredPart:
        """The teacher-forced passes over this rank's rows and the reward stage over its episodes, merged over
        ranks: old and reference log-probs, values, reward components and turn rewards of the whole batch."""
        job, models = self.job, self.models
        mine = rows.select(rows.episode_rows(lo, hi))
        n_turns = max(ep.num_turns for ep in episodes)
        layouts = {phase: LayoutStats() for phase in ("score", "reference", "critic")}
        head = models.critic if models.learner.critic_is_head else None
        critic_free = models.critic is None
        by_reference = self.definition.reader == "reference"  # the reward is read from the reference's pass
        attention = self.definition.attention_config()
        with self.timed("score", metrics):
            policy = score_rows(models.policy.model, mine, n_episodes=len(episodes), n_turns=n_turns,
                                attention=attention, reward=None if by_reference else self.definition.terms,
                                scoring=job.scoring, value_head=head, stats=layouts["score"])
        with self.timed("reference", metrics), self.reference_mode() as reference:
            ref_logprobs, read = reference_pass(reference, mine, read=by_reference, n_episodes=len(episodes),
                                                n_turns=n_turns, attention=attention, reward=self.definition.terms,
                                                scoring=job.scoring, stats=layouts["reference"])
        if critic_free:  # the estimator needs no values: no critic pass
            values = torch.zeros_like(policy.logprobs)
        else:
            with self.timed("critic", metrics):
                values = policy.values if head is not None else rows_values(models.critic, mine, job.scoring,
                                                                            layouts["critic"])
        with self.timed("reward", metrics):
            comps = read if by_reference else policy.components
            mine_only = {k: v[lo:hi] for k, v in comps.items()}
            turn = self.turn_reward(episodes[lo:hi], mine_only, job)
            rewards = torch.zeros(len(episodes), n_turns)
            rewards[lo:hi] = turn.total
            for key, table in turn.logged().items():  # [E, T], zero outside this rank's episodes (merge adds)
                comps[key] = torch.zeros_like(rewards).index_copy_(0, torch.arange(lo, hi), table)
        for phase, stats in layouts.items():
            metrics |= stats.metrics(phase)
        metrics["batch/turn_rows"] = float(mine.num_rows)
        metrics["batch/unpacked_turns"] = float(unpacked_turns(mine))
        part = ScoredPart(old_logprobs=policy.logprobs, ref_logprobs=ref_logprobs, values=values,
                          rewards=rewards, components=comps)
        return merge_parts(all_gather_object(self.dist, part))

    def collect(self, metrics: dict) -> tuple[Experience, list]:
        """Steps 1-4: roll out, lay out rows, score and assemble the global batch (the same on every rank)."""
        job = self.job
        with self.timed("rollout", metrics):
            episodes, lo, hi = self.rollout_batch()
        with self.timed("rows", metrics):
            rows = build_rows(episodes, self.models.policy, self.salience)  # whole batch: 1-process padding
        scored = self.score(rows, episodes, lo, hi, metrics)
        with self.timed("advantages", metrics):
            exp = assemble(rows=rows, episodes=episodes, scored=scored, ppo=job.ppo,
                           final_weight=self.definition.final_turn_weight(self.kind),
                           group_size=job.rollout.group_size, episode_token_budget=self.episode_token_budget)
        return exp, episodes

    def iteration(self) -> dict:
        """rollout -> rows -> scored experience -> advantages (collect) -> update -> report."""
        job, metrics = self.job, {}
        exp, episodes = self.collect(metrics)
        if not self.nan_guard.check(self.state, batch_is_finite(exp), nonfinite_reason(exp)):
            return metrics
        with self.timed("update", metrics):
            stats = ppo_update(self.models.learner, exp, job.ppo, job.scoring, self.generator, self.dist)
            sync_whole_models(self.models)
            self.engine.sync_weights()
        if not self.nan_guard.check(
            self.state, not stats.pop("guard/nonfinite_update"), "NaN/Inf in the PPO loss or gradients"
        ):
            return metrics
        with self.timed("report", metrics):
            metrics |= stats | experience_metrics(exp, episodes, critic=self.models.critic is not None)
            for key in [k for k in exp.components if k.startswith("part/")]:
                metrics[f"reward/{key[5:]}"] = masked_turn_mean(exp.components[key], exp.turn_mask.float())
            if self.dist.is_main:
                with run_folder_write(self.run_dir, "samples"):
                    self.write_samples(episodes, exp.components)
        return metrics

    @property
    def episode_token_budget(self) -> int:
        """The most response tokens one episode may generate (Dr. GRPO divides its token loss by this)."""
        cfg = self.job.rollout
        return cfg.cot_max_new_tokens if self.kind == "math" else cfg.turns * cfg.sampling.max_new_tokens

    @contextmanager
    def reference_mode(self):
        models = self.models
        if models.reference is not None:
            yield models.reference
            return
        with models.policy.model.disable_adapter():  # LoRA: the base model is the reference
            yield models.policy.model

    @contextmanager
    def timed(self, phase: str, metrics: dict):
        start = time.perf_counter()
        yield
        metrics[f"time/{phase}"] = metrics.get(f"time/{phase}", 0.0) + time.perf_counter() - start

    # -- evaluation, samples, checkpoints -----------------------------------------------------
    def evaluate(self, updates: int | None = None) -> dict:
        """Held-out reward and quality of a fixed-seed rollout (rank 0 only; cagsr/ppo/heldout_eval.py)."""
        return evaluate_heldout(self, updates)

    def answer_held_out(self, updates: int) -> None:
        """The first held-out prompts answered greedily into RUN/heldout_replies.jsonl (heldout_eval.py)."""
        answer_held_out(self, updates)

    def write_samples(self, episodes, comps) -> None:
        rows = sample_records(self.state.iteration, episodes, comps, self.job.heldout.samples)
        with (self.run_dir / "samples.jsonl").open("a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    def save_final_model(self) -> Path:
        folder = self.run_dir / "model"
        model = self.models.policy.model
        model = model.merge_and_unload() if self.job.lora.r > 0 else model
        with run_folder_write(self.run_dir, "final model"):
            model.save_pretrained(folder)
            self.models.policy.tokenizer.save_pretrained(folder)
            self.definition.save(folder)
        return folder

    # -- the loop -----------------------------------------------------------------------------
    def step(self) -> dict:
        """One iteration plus evaluation, counters and the agreement on stopping."""
        it, every, last = self.state.iteration, self.job.heldout.every, self.job.ppo.iterations
        metrics = self.iteration()
        if self.dist.is_main and (it == 0 or (it + 1) % every == 0 or it + 1 == last):
            metrics |= self.evaluate()
        self.state.iteration += 1
        metrics["guard/skipped_batches"] = float(self.state.skipped_batches)
        metrics["dist/world_size"] = float(self.dist.world)
        metrics["dist/trained_share_per_rank"] = self.trained_share
        self._stop_requested = any_true(self.dist, self._stop_requested)  # SIGTERM may reach ranks apart
        return reduce_max_metrics(self.dist, metrics)

    def train(self) -> TrainResult:
        cfg, history, every = self.job.ppo, [], self.job.checkpoints.every
        previous = signal.signal(signal.SIGTERM, self._on_sigterm) if _main_thread() else None
        bar = tqdm(
            total=cfg.iterations,
            initial=self.state.iteration,
            desc="ppo",
            disable=not (self.job.run.progress and self.dist.is_main),
            dynamic_ncols=True,
        )
        failed = True
        try:
            with writer_threads_report_one_line():
                while self.state.iteration < cfg.iterations and not self._stop_requested:
                    metrics = self.step()
                    with run_folder_write(self.run_dir, "metrics"):
                        self.logger.log(self.state.iteration, metrics)
                    history.append({"iteration": self.state.iteration, **metrics})
                    bar.update(1)
                    bar.set_postfix(
                        reward=f"{metrics.get('reward/reward', float('nan')):.3f}",
                        kl=f"{metrics.get('policy/kl_ref_k3', float('nan')):.4f}",  # k3: never negative
                    )
                    if self.state.iteration % every == 0 or self.state.iteration == cfg.iterations:
                        save_state(self)
                if self.state.iteration >= cfg.iterations:
                    self.nan_guard.check_some_trained(self.state.skipped_batches, self.state.iteration)
                    main_first(self.dist, self.save_final_model)
                elif self.state.iteration % every:  # stopped by SIGTERM after an unsaved iteration
                    save_state(self)
                failed = False
        finally:
            bar.close()
            self._close_logger(report=not failed)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        stopped = self.state.iteration < cfg.iterations
        return TrainResult(self.run_dir, history, stopped_early=stopped, is_main=self.dist.is_main)

    def _close_logger(self, report: bool) -> None:
        """Flush the logs; while another error is on its way out, a second failure here stays quiet."""
        try:
            with run_folder_write(self.run_dir, "metrics"):
                self.logger.close()
        except CagsrError:
            if report:
                raise

    def _on_sigterm(self, *_):
        self._stop_requested = True  # finish the iteration, save, exit cleanly


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


