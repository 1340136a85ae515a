"""Held-out evaluation during training: the fixed-seed rollout scored as the run scores it (eval/ metrics and
RUN/eval_episodes.jsonl, the before/after table's rows), and the greedy before/after replies.

    metrics = evaluate_heldout(trainer)            # Trainer.evaluate
    answer_held_out(trainer, updates=0)            # Trainer.answer_held_out

Kept beside the trainer so Trainer reads as the training pipeline; these read its models, engine, reward
definition and run folder, and write only on rank 0 (the trainer calls them there).
"""

from __future__ import annotations

import random

import torch

from cagsr.evaluation.metrics.quality import distinct_n, episode_quality
from cagsr.ppo.guards import run_folder_write
from cagsr.ppo.heldout import append_rows, episode_rows, kl_per_episode
from cagsr.ppo.metrics import masked_turn_mean, reward_metrics
from cagsr.ppo.replies import append_replies, greedy_episodes, reply_rows
from cagsr.rollout.recorded import replay_record
from cagsr.rollout.runner import rollout
from cagsr.scoring.passes import reference_pass, rows_logprobs, score_rows
from cagsr.scoring.probe import score_heldout
from cagsr.scoring.rows import build_rows


@torch.no_grad()
def evaluate_heldout(trainer, updates: int | None = None) -> dict:
    """Mean attention reward of held-out episodes, rolled out with a fixed seed (rank 0 only).

    Each episode's values also go to eval_episodes.jsonl (the before/after table's intervals);
    `updates` labels them: PPO updates so far (default: this iteration's, just applied)."""
    job = trainer.job
    records = (trainer.val_records or trainer.train_records)[: job.heldout.episodes]
    rng = random.Random(job.run.seed + 10_007)
    with trainer.timed("eval", out := {}), trainer.truncation_notice():
        episodes = rollout(records, trainer.models.policy, trainer.engine, trainer.simulator, job.rollout, rng)
        if trainer.definition.reader == "policy":  # what `cagsr reward --heldout` recomputes
            rows, scores, turn = score_heldout(trainer.models.policy, episodes, trainer.definition, job.scoring, job)
            with trainer.reference_mode() as reference:
                ref_logprobs = rows_logprobs(reference, rows, job.scoring)
            comps = scores.components
        else:
            rows, scores, comps, ref_logprobs = _score_by_reference(trainer, episodes)
            turn = trainer.turn_reward(episodes, comps, job)
        comps = {**comps, "reward": turn.attention}
        kl = kl_per_episode(rows, scores.logprobs, ref_logprobs, len(episodes))
    texts = [t for ep in episodes for t in ep.turn_texts]
    parts = turn.parts
    out |= reward_metrics(comps, prefix="eval")
    out |= {f"eval/{name}": masked_turn_mean(part, comps["turn_mask"].float()) for name, part in parts.items()}
    out |= {f"eval/{name}": sum(values) / max(1, len(values)) for name, values in kl.items()}
    with run_folder_write(trainer.run_dir, "held-out episodes"):
        label = trainer.state.iteration + 1 if updates is None else updates
        replays = [replay_record(ep, prompt_tokens(job, ep.kind)) for ep in episodes]
        append_rows(trainer.run_dir, episode_rows(label, episodes, comps, parts, kl, turn.total, replays))
    out |= {
        "eval/response_words": sum(len(t.split()) for t in texts) / max(1, len(texts)),
        "eval/distinct2": distinct_n(texts),
    }
    return out | episode_quality(episodes)  # quality proxies beside the reward: the hacking check

def _score_by_reference(trainer, episodes: list):
    """Held-out scoring with reward.reader reference: the policy's plain pass (log-probs) and the reference's
    capture pass (log-probs for the KL, and the reward's components)."""
    job, definition = trainer.job, trainer.definition
    rows = build_rows(episodes, trainer.models.policy, trainer.salience)
    n_turns = max(ep.num_turns for ep in episodes)
    scores = score_rows(trainer.models.policy.model, rows, n_episodes=len(episodes), n_turns=n_turns,
                        attention=definition.attention_config(), reward=None, scoring=job.scoring)
    with trainer.reference_mode() as reference:
        ref_logprobs, read = reference_pass(reference, rows, read=True, n_episodes=len(episodes), n_turns=n_turns,
                                            attention=definition.attention_config(), reward=definition.terms,
                                            scoring=job.scoring)
    return rows, scores, read, ref_logprobs

def prompt_tokens(job, kind: str) -> int:
    """The history budget the rollout formats prompts with (what a replay of its episodes needs)."""
    cfg = job.rollout
    return cfg.max_context if kind == "math" else cfg.max_context - cfg.sampling.max_new_tokens

def answer_held_out(trainer, updates: int) -> None:
    """The first heldout.replies held-out prompts answered greedily, appended to
    RUN/heldout_replies.jsonl: before any update and at the end, the table shows them side by side."""
    job = trainer.job
    records = (trainer.val_records or trainer.train_records)[: job.heldout.replies]
    if not records:
        return
    with torch.no_grad(), trainer.truncation_notice():
        episodes = greedy_episodes(records, trainer.models.policy, trainer.engine, trainer.simulator, job.rollout,
                                   job.run.seed + 20_011)
    with run_folder_write(trainer.run_dir, "held-out replies"):
        append_replies(trainer.run_dir, reply_rows(updates, episodes))
