"""The PPO trainer: orchestrates the stages; every computation lives in its own module.

One iteration:
  1. rollout     episodes from the policy and the user simulator        (time/rollout)
  2. score       one capture pass: old log-probs, attention -> reward   (time/score)
  3. reference   log-probs of the frozen reference for the KL penalty   (time/reference)
  4. critic      V(H_t) from the separate value model                   (time/critic)
  5. advantages  per-turn returns and advantages, broadcast to tokens   (time/advantages)
  6. update      PPO epochs over shuffled minibatches                   (time/update)
  7. report      metrics, samples, held-out reward, checkpoint          (time/report)

    cagsr train --config presets/dialogue.yaml
"""

from __future__ import annotations

import json
import random
import signal
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from cagsr.config import to_dict
from cagsr.data.sources import load_records, record_kind, split_records
from cagsr.errors import CagsrError
from cagsr.ppo.config import TrainJob
from cagsr.ppo.experience import Experience, assemble, rows_logprobs, rows_values, score_rows
from cagsr.ppo.report import distinct_n, experience_metrics, masked_turn_mean, reward_metrics, sample_records
from cagsr.ppo.rows import build_rows
from cagsr.ppo.setup import build_models, build_rollout_parts
from cagsr.ppo.state import TrainState, load_state, save_state
from cagsr.ppo.update import ppo_update
from cagsr.reward.registry import get_reward
from cagsr.rollout.runner import rollout
from cagsr.utils.logging import MetricLogger
from cagsr.utils.run import prepare_run_dir, seed_everything


@dataclass
class TrainResult:
    run_dir: Path
    """The run folder (config, metrics, TensorBoard, checkpoints, samples, final model)."""
    history: list[dict]
    """Metrics of every iteration."""
    stopped_early: bool = False
    """True when a SIGTERM stopped the run after saving a checkpoint."""


class Trainer:
    def __init__(self, job: TrainJob, resume: Path | None = None):
        self.job = job
        seed_everything(job.run.seed)
        if job.run.threads:
            torch.set_num_threads(job.run.threads)
        records = load_records(job.data)
        self.kind = record_kind(records)
        self.train_records, self.val_records = split_records(records, job.data.val_fraction, job.data.seed)
        self.run_dir = Path(resume) if resume else prepare_run_dir(job.run.output_dir, "train", job)
        self.models = build_models(job)
        self.engine, self.simulator, self.salience = build_rollout_parts(job, self.models, self.train_records)
        self.reward_fn = None if job.reward.kind == "attention" else get_reward(job.reward.kind)
        self.state = TrainState.fresh(job.run.seed, len(self.train_records))
        self.generator = torch.Generator().manual_seed(job.run.seed)
        if resume:
            load_state(self, resume)
        self.logger = MetricLogger(self.run_dir, wandb=job.run.wandb, config=to_dict(job))
        self._stop_requested = False

    # -- the pipeline -------------------------------------------------------------------------
    def iteration(self) -> dict:
        job, models, metrics = self.job, self.models, {}
        policy = models.policy
        with self.timed("rollout", metrics):
            records = self.state.next_records(self.train_records, job.rollout.episodes)
            episodes = rollout(records, policy, self.engine, self.simulator, job.rollout, self.state.rng)
        with self.timed("score", metrics):
            rows = build_rows(episodes, policy, self.salience)
            n_turns = max(ep.num_turns for ep in episodes)
            head = models.learner.critic if models.learner.critic_is_head else None
            old_logprobs, head_values, comps = score_rows(policy.model, rows, len(episodes), n_turns,
                                                          job.attention, job.reward, head)
        with self.timed("reference", metrics), self.reference_mode() as reference:
            ref_logprobs = rows_logprobs(reference, rows, job.attention.batch_rows)
        with self.timed("critic", metrics):
            values = head_values if head is not None else rows_values(models.learner.critic, rows,
                                                                     job.attention.batch_rows)
        with self.timed("advantages", metrics):
            rewards = comps["reward"] if self.reward_fn is None else self.reward_fn(episodes, job)
            exp = assemble(rows, episodes, old_logprobs, ref_logprobs, values, rewards * comps["turn_mask"],
                           comps["turn_mask"], comps, job.ppo, self.final_weight)
        if not self.finite(exp):
            return metrics | {"guard/skipped_batches": float(self.state.skipped_batches)}
        with self.timed("update", metrics):
            metrics |= ppo_update(models.learner, exp, job.ppo, self.generator)
            self.engine.sync_weights()
        metrics |= experience_metrics(exp, episodes)
        if self.reward_fn is not None:
            metrics["reward/task_reward"] = masked_turn_mean(rewards, comps["turn_mask"].float())
        self.write_samples(episodes, comps)
        return metrics

    @property
    def final_weight(self) -> float:
        return self.job.reward.final_weight if self.kind == "math" else 1.0

    def finite(self, exp: Experience) -> bool:
        """NaN/Inf guard: skip the batch with a warning; stop after too many in a row."""
        tensors = (exp.rewards, exp.advantages, exp.old_logprobs, exp.ref_logprobs, exp.old_values)
        if all(bool(torch.isfinite(t).all()) for t in tensors):
            self.state.bad_in_a_row = 0
            return True
        self.state.skipped_batches += 1
        self.state.bad_in_a_row += 1
        warnings.warn(f"iteration {self.state.iteration}: NaN/Inf in rewards, advantages, log-probs or values: "
                      "batch skipped", stacklevel=2)
        if self.state.bad_in_a_row > self.job.ppo.max_bad_batches:
            raise CagsrError(f"{self.state.bad_in_a_row} batches in a row had NaN/Inf values; stopping before "
                             "a corrupted checkpoint is written (lower ppo.lr or check the data)")
        return False

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
        metrics[f"time/{phase}"] = time.perf_counter() - start

    # -- evaluation, samples, checkpoints -----------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict:
        """Mean attention reward of held-out episodes, rolled out with a fixed seed."""
        job = self.job
        records = (self.val_records or self.train_records)[: job.ppo.eval_episodes]
        rng = random.Random(job.run.seed + 10_007)
        with self.timed("eval", out := {}):
            episodes = rollout(records, self.models.policy, self.engine, self.simulator, job.rollout, rng)
            rows = build_rows(episodes, self.models.policy, self.salience)
            n_turns = max(ep.num_turns for ep in episodes)
            _, _, comps = score_rows(self.models.policy.model, rows, len(episodes), n_turns, job.attention,
                                     job.reward)
        texts = [t for ep in episodes for t in ep.turn_texts]
        out |= reward_metrics(comps, prefix="eval")
        if self.reward_fn is not None:
            out["eval/task_reward"] = masked_turn_mean(self.reward_fn(episodes, job), comps["turn_mask"].float())
        out |= {"eval/response_words": sum(len(t.split()) for t in texts) / max(1, len(texts)),
                "eval/distinct2": distinct_n(texts)}
        return out

    def write_samples(self, episodes, comps) -> None:
        rows = sample_records(self.state.iteration, episodes, comps, self.job.ppo.sample_episodes)
        with (self.run_dir / "samples.jsonl").open("a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    def save_final_model(self) -> Path:
        folder = self.run_dir / "model"
        model = self.models.policy.model
        model = model.merge_and_unload() if self.job.ppo.lora_r > 0 else model
        model.save_pretrained(folder)
        self.models.policy.tokenizer.save_pretrained(folder)
        return folder

    # -- the loop -----------------------------------------------------------------------------
    def train(self) -> TrainResult:
        cfg, history = self.job.ppo, []
        previous = signal.signal(signal.SIGTERM, self._on_sigterm) if _main_thread() else None
        bar = tqdm(total=cfg.iterations, initial=self.state.iteration, desc="ppo",
                   disable=not self.job.run.progress, dynamic_ncols=True)
        try:
            while self.state.iteration < cfg.iterations and not self._stop_requested:
                it = self.state.iteration
                metrics = self.iteration()
                if it == 0 or (it + 1) % cfg.eval_every == 0 or it + 1 == cfg.iterations:
                    metrics |= self.evaluate()
                self.state.iteration += 1
                metrics["guard/skipped_batches"] = float(self.state.skipped_batches)
                self.logger.log(self.state.iteration, metrics)
                history.append({"iteration": self.state.iteration, **metrics})
                bar.update(1)
                bar.set_postfix(reward=f"{metrics.get('reward/reward', float('nan')):.3f}",
                                kl=f"{metrics.get('policy/kl_ref', float('nan')):.4f}")
                if self.state.iteration % cfg.save_every == 0 or self.state.iteration == cfg.iterations:
                    save_state(self)
            if self._stop_requested:
                save_state(self)
            else:
                self.save_final_model()
        finally:
            bar.close()
            self.logger.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return TrainResult(self.run_dir, history, stopped_early=self._stop_requested)

    def _on_sigterm(self, *_):
        self._stop_requested = True  # finish the iteration, save, exit cleanly


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def run_train(job: TrainJob, resume: Path | None = None) -> TrainResult:
    return Trainer(job, resume).train()
