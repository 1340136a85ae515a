"""The PPO update: several epochs of shuffled minibatches of whole episodes over one Experience.

    stats = ppo_update(learner, exp, cfg, scoring, generator, ctx)

A minibatch is a set of episodes, so a packed dialogue is never split: its rows are read in the
token-budget passes of scoring/layout.py (one sequence per dialogue when packed) and each pass's loss
is weighted by its share of the minibatch's tokens (policy, KL) and turns (value), so the gradients
summed over the passes equal the gradient of the whole minibatch's per-turn rows.

Data parallel: every rank holds the whole Experience and draws the same permutation; each
minibatch's episodes are dealt out over the ranks (episodes[rank::world]), and the weights use the
minibatch's GLOBAL counts, so after the gradients are summed over ranks they equal the
single-process gradient.

With FSDP (cagsr.distributed.fsdp) the policy and a separate critic are sharded: their gradients are
summed by FSDP's reduce-scatter, only replicated parameters (a value head) go through all_reduce_grads,
and every rank runs as many forwards and backwards as the busiest rank, padding with zero-weighted
stand-in passes.

A non-finite loss or gradient norm stops the update of this batch before the step is applied
(stats["guard/nonfinite_update"] = 1); the trainer counts it as a skipped batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cagsr.attention.forward import forward_no_capture
from cagsr.distributed import SINGLE, DistContext, all_reduce_, all_reduce_grads, any_true
from cagsr.distributed.fsdp import clip_grad_norm_, is_sharded
from cagsr.models.forward import token_logprobs
from cagsr.ppo import functional as PF
from cagsr.ppo.config import PPOConfig
from cagsr.ppo.experience import Experience
from cagsr.scoring.config import ScoringConfig
from cagsr.scoring.layout import LayoutStats, Pass, plan_passes

# Per-minibatch statistics, reduced over ranks as weighted sums (weights: share of the global count).
TOKEN_STATS = ("loss/policy", "loss/kl", "policy/clip_frac", "policy/approx_kl", "policy/entropy")
TURN_STATS = ("loss/value", "value/clip_frac")


@dataclass(kw_only=True)
class Learner:
    """What the update trains: the policy, its critic, and their optimizers."""

    policy: nn.Module
    """The policy being trained (an FSDP-sharded copy under FSDP)."""
    critic: nn.Module | None
    """A value head on the policy's hidden states, a separate value model, or None (critic-free estimators)."""
    critic_is_head: bool
    """True for a value head (it reads the policy pass's hidden states)."""
    optimizer: torch.optim.Optimizer
    """AdamW over the policy's trainable parameters and the critic's."""
    scheduler: torch.optim.lr_scheduler.LRScheduler
    """Learning-rate schedule, stepped once per iteration."""
    grad_clip: float = 1.0
    """Every step clips the global gradient norm to this (optimizer.grad_clip)."""
    encoder_decoder: bool = False
    """Seq2seq policy: its passes read padded rows (no packing)."""
    sharded: bool = False
    """FSDP: policy (and a separate critic) are sharded copies of the whole rollout models."""

    def parameters(self):
        yield from (p for p in self.policy.parameters() if p.requires_grad)
        if self.critic is not None:
            yield from self.critic.parameters()

    def modules(self) -> nn.Module:
        """The trained modules under one root, as the checkpoint's optimizer-state keys expect."""
        trained = {"policy": self.policy} | ({} if self.critic is None else {"critic": self.critic})
        return nn.ModuleDict(trained)


def pass_loss(learner: Learner, exp: Experience, part: Pass, cfg: PPOConfig, totals: tuple[float, float, float]
              ) -> tuple[Tensor, dict]:
    """Loss of the rows `part.rows` of exp, read in one pass, weighted by their share of the minibatch's
    totals = (response tokens, turn starts, the token loss's divisor), so the passes' losses sum to the
    minibatch's loss."""
    device = next(learner.policy.parameters()).device
    index = part.rows
    rows = exp.rows.select(index).to(device)
    logits, hidden = forward_no_capture(learner.policy, part.batch.to(device))
    logprobs = token_logprobs(logits, rows.response_ids)
    mask = rows.response_mask
    old, ref = exp.old_logprobs[index].to(device), exp.ref_logprobs[index].to(device)
    adv = exp.token_advantages[index].to(device)
    pg_loss, pg_stats = PF.policy_loss(logprobs, old, adv, mask, cfg.clip_eps)
    kl = PF.masked_mean(PF.kl_penalty(logprobs, ref, cfg.kl_estimator), mask)
    # Means over this pass's entries times its share of the minibatch's count = minibatch sums / count.
    w_tok = float(mask.sum()) / max(1.0, totals[0])
    w_turn = float(rows.turn_start.sum()) / max(1.0, totals[1])
    loss = float(mask.sum()) / max(1.0, totals[2]) * (pg_loss + cfg.kl_coef * kl)
    if learner.critic is not None:
        values = learner.critic(hidden) if learner.critic_is_head else learner.critic(part.batch.to(device))
        v_loss, v_stats = PF.value_loss(values, exp.old_values[index].to(device),
                                        exp.token_returns[index].to(device), rows.turn_start, cfg.value_clip)
        loss = loss + w_turn * cfg.vf_coef * v_loss
    with torch.no_grad():
        entropy = PF.masked_mean(PF.entropy_from_logits(logits), mask)
    stats = {
        "loss/policy": pg_loss.item(),
        "loss/kl": kl.item(),
        "policy/clip_frac": float(pg_stats["clip_frac"]),
        "policy/approx_kl": float(pg_stats["approx_kl"]),
        "policy/entropy": entropy.item(),
    }
    if learner.critic is not None:
        stats |= {"loss/value": v_loss.item(), "value/clip_frac": float(v_stats["clip_frac"])}
    stats = {k: v * (w_tok if k in TOKEN_STATS else w_turn) for k, v in stats.items()}
    stats["loss/total"] = loss.item()
    return loss, stats


def _totals(exp: Experience, episodes: Tensor) -> tuple[float, float, float]:
    """The minibatch's (response tokens, turn starts, divisor of the token loss). The divisor is the token
    count, or with Dr. GRPO's normalisation a constant: the episodes times the most tokens an episode may
    generate, so a reply's length does not change its tokens' weight."""
    index = exp.rows.rows_of_episodes(episodes)
    tokens = float(exp.rows.response_mask[index].sum())
    divisor = tokens if exp.episode_token_budget is None else float(len(episodes) * exp.episode_token_budget)
    return tokens, float(exp.rows.turn_start[index].sum()), divisor


def _reduce_stats(ctx: DistContext, stats: dict[str, float]) -> dict[str, float]:
    """Sum the ranks' weighted stats (NaN anywhere stays NaN, so every rank sees a bad loss)."""
    if not ctx.active:
        return stats
    keys = sorted(stats)
    summed = all_reduce_(ctx, torch.tensor([stats[k] for k in keys], dtype=torch.float64))
    return dict(zip(keys, summed.tolist(), strict=True))


def _own_passes(learner: Learner, exp: Experience, rows: Tensor, scoring: ScoringConfig, ctx: DistContext,
                stats: LayoutStats) -> list[tuple[Pass, bool]]:
    """This rank's passes over `rows`, and whether each is real. Sharded modules need every rank in every
    forward, so there each rank runs as many passes as the busiest one: the extra ones re-read a row of the
    Experience with their loss multiplied by zero."""
    own = plan_passes(exp.rows, layout=scoring.layout, token_budget=scoring.token_budget, pad_id=0,
                      encoder_decoder=learner.encoder_decoder, index=rows)
    stats.add(own)
    passes = [(p, True) for p in own]
    if learner.sharded:
        most = int(all_reduce_(ctx, torch.tensor([float(len(own))]), op="max").item())
        if len(own) < most:
            stand_in = plan_passes(exp.rows, layout=scoring.layout, token_budget=1, pad_id=0,
                                   encoder_decoder=learner.encoder_decoder, index=torch.tensor([0]))[0]
            passes += [(stand_in, False)] * (most - len(own))
    return passes


def minibatch_step(learner: Learner, exp: Experience, episodes: Tensor, cfg: PPOConfig, scoring: ScoringConfig,
                   ctx: DistContext, layout_stats: LayoutStats) -> tuple[dict[str, float], bool]:
    """One gradient step on a global minibatch of episodes; returns (stats, applied)."""
    totals = _totals(exp, episodes)
    mine = exp.rows.rows_of_episodes(episodes[ctx.rank :: ctx.world])
    learner.optimizer.zero_grad(set_to_none=True)
    stats = dict.fromkeys((*TOKEN_STATS, *(TURN_STATS if learner.critic is not None else ()), "loss/total"), 0.0)
    for part, real in _own_passes(learner, exp, mine, scoring, ctx, layout_stats):
        loss, own = pass_loss(learner, exp, part, cfg, totals)
        finite = bool(torch.isfinite(loss)) or not real
        if learner.sharded:  # every rank must take part in the same backwards
            finite = not any_true(ctx, not finite)
        if not finite:  # keep NaN out of the gradients; the reduced stats report it
            stats["loss/total"] = float("nan")
            continue
        if real:
            stats = {k: stats[k] + v for k, v in own.items()}
        (loss if real else loss * 0.0).backward()
    stats = _reduce_stats(ctx, stats)
    if not torch.isfinite(torch.tensor(stats["loss/total"])):
        learner.optimizer.zero_grad(set_to_none=True)
        return stats, False
    params = list(learner.parameters())
    all_reduce_grads(ctx, [p for p in params if not is_sharded(p)])
    norm = clip_grad_norm_(params, learner.grad_clip, ctx)
    stats["policy/grad_norm"] = float(norm)
    if not torch.isfinite(norm):  # identical on every rank: the gradients were summed first
        learner.optimizer.zero_grad(set_to_none=True)
        return stats, False
    learner.optimizer.step()
    return stats, True


def ppo_update(learner: Learner, exp: Experience, cfg: PPOConfig, scoring: ScoringConfig,
               generator: torch.Generator, ctx: DistContext = SINGLE) -> dict:
    """Epochs x shuffled minibatches of episodes; early stop when approx KL passes cfg.target_kl."""
    totals: dict[str, float] = {}
    steps, stopped, bad = 0, False, False
    n_episodes = int(exp.turn_mask.shape[0])
    layout_stats = LayoutStats()
    # Dropout off (eval mode) while training, as TRL does for PPO: the ratio must compare the same
    # function at the first step, and ranks would draw different dropout masks than one process.
    learner.policy.eval()
    if learner.critic is not None:
        learner.critic.eval()
    for _ in range(cfg.epochs):
        order = torch.randperm(n_episodes, generator=generator)  # same generator state on every rank
        epoch_kl = []
        for batch in order.split(cfg.minibatch_episodes):
            stats, applied = minibatch_step(learner, exp, batch, cfg, scoring, ctx, layout_stats)
            if not applied:
                bad = True
                break
            epoch_kl.append(stats["policy/approx_kl"])
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + v
            steps += 1
        if bad or (cfg.target_kl is not None and sum(epoch_kl) / len(epoch_kl) > cfg.target_kl):
            stopped = not bad
            break
    if bad:
        learner.optimizer.zero_grad(set_to_none=True)
        return {"guard/nonfinite_update": 1.0, "policy/updates": float(steps)}
    learner.scheduler.step()
    out = {k: v / max(1, steps) for k, v in totals.items()}
    out |= {
        "policy/early_stop": float(stopped),
        "policy/updates": float(steps),
        "policy/lr": learner.scheduler.get_last_lr()[0],
        "guard/nonfinite_update": 0.0,
    }
    return out | layout_stats.metrics("update")
