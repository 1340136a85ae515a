"""The PPO update: several epochs of shuffled minibatches over the rows of one Experience.

    stats = ppo_update(learner, exp, cfg, generator, ctx)

Data parallel: every rank holds the whole Experience and draws the same permutation; each
minibatch's rows are dealt out over the ranks (rows[rank::world]). Each rank's loss terms are
divided by the minibatch's GLOBAL token (policy, KL) or turn (value) count, so after the gradients
are summed over ranks they equal the single-process gradient of the whole minibatch.

With FSDP (cagsr.distributed.fsdp) the policy and a separate critic are sharded: their gradients are
summed by FSDP's reduce-scatter, only replicated parameters (a value head) go through all_reduce_grads,
and every rank runs a forward and backward for every minibatch, even one without rows of its own.

A non-finite loss or gradient norm stops the update of this batch before the step is applied
(stats["guard/nonfinite_update"] = 1); the trainer counts it as a skipped batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cagsr.attention.capture import forward_no_capture
from cagsr.distributed import SINGLE, DistContext, all_reduce_, all_reduce_grads
from cagsr.distributed.fsdp import clip_grad_norm_, is_sharded
from cagsr.models.forward import token_logprobs
from cagsr.ppo import functional as PF
from cagsr.ppo.config import PPOConfig
from cagsr.ppo.experience import Experience

# Per-minibatch statistics, reduced over ranks as weighted sums (weights: share of the global count).
TOKEN_STATS = ("loss/policy", "loss/kl", "policy/clip_frac", "policy/approx_kl", "policy/entropy")
TURN_STATS = ("loss/value", "value/clip_frac")


@dataclass
class Learner:
    """What the update trains: the policy, its critic, and their optimizers."""

    policy: nn.Module
    critic: nn.Module
    critic_is_head: bool
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    sharded: bool = False
    """FSDP: policy (and a separate critic) are sharded copies of the whole rollout models."""

    def parameters(self):
        yield from (p for p in self.policy.parameters() if p.requires_grad)
        yield from self.critic.parameters()

    def modules(self) -> nn.Module:
        """Both trained modules under one root, as the checkpoint's optimizer-state keys expect."""
        return nn.ModuleDict({"policy": self.policy, "critic": self.critic})


def minibatch_loss(
    learner: Learner,
    exp: Experience,
    index: Tensor,
    cfg: PPOConfig,
    totals: tuple[float, float] | None = None,
) -> tuple[Tensor, dict]:
    """Loss of rows `index`; totals = (response tokens, turn starts) of the whole minibatch when the
    rows are one rank's share of it (None: the rows are the whole minibatch)."""
    device = next(learner.policy.parameters()).device
    rows = exp.rows.select(index).to(device)
    b = rows.batch
    logits, hidden = forward_no_capture(learner.policy, b)
    logprobs = token_logprobs(logits, b.response_ids)
    mask = b.response_mask
    old, ref = exp.old_logprobs[index].to(device), exp.ref_logprobs[index].to(device)
    adv = exp.token_advantages[index].to(device)
    pg_loss, pg_stats = PF.policy_loss(logprobs, old, adv, mask, cfg.clip_eps)
    kl = PF.masked_mean(PF.kl_penalty(logprobs, ref, cfg.kl_estimator), mask)
    values = learner.critic(hidden) if learner.critic_is_head else learner.critic(b)
    v_loss, v_stats = PF.value_loss(
        values,
        exp.old_values[index].to(device),
        exp.token_returns[index].to(device),
        rows.turn_start,
        cfg.value_clip,
    )
    # Means over this rank's entries times its share of the global count = global sums / global count.
    w_tok = 1.0 if totals is None else float(mask.sum()) / max(1.0, totals[0])
    w_turn = 1.0 if totals is None else float(rows.turn_start.sum()) / max(1.0, totals[1])
    loss = w_tok * (pg_loss + cfg.kl_coef * kl) + w_turn * cfg.vf_coef * v_loss
    with torch.no_grad():
        entropy = PF.masked_mean(PF.entropy_from_logits(logits), mask)
    stats = {
        "loss/policy": pg_loss.item(),
        "loss/value": v_loss.item(),
        "loss/kl": kl.item(),
        "policy/clip_frac": float(pg_stats["clip_frac"]),
        "policy/approx_kl": float(pg_stats["approx_kl"]),
        "policy/entropy": entropy.item(),
        "value/clip_frac": float(v_stats["clip_frac"]),
    }
    stats = {k: v * (w_tok if k in TOKEN_STATS else w_turn) for k, v in stats.items()}
    stats["loss/total"] = loss.item()
    return loss, stats


def _global_totals(exp: Experience, index: Tensor) -> tuple[float, float]:
    return float(exp.rows.batch.response_mask[index].sum()), float(exp.rows.turn_start[index].sum())


def _reduce_stats(ctx: DistContext, stats: dict[str, float]) -> dict[str, float]:
    """Sum the ranks' weighted stats (NaN anywhere stays NaN, so every rank sees a bad loss)."""
    if not ctx.active:
        return stats
    keys = sorted(stats)
    summed = all_reduce_(ctx, torch.tensor([stats[k] for k in keys], dtype=torch.float64))
    return dict(zip(keys, summed.tolist(), strict=True))


def minibatch_step(
    learner: Learner, exp: Experience, index: Tensor, cfg: PPOConfig, ctx: DistContext
) -> tuple[dict[str, float], bool]:
    """One gradient step on a global minibatch; returns (stats, applied)."""
    mine = index[ctx.rank :: ctx.world]
    learner.optimizer.zero_grad(set_to_none=True)
    loss, stats = None, dict.fromkeys((*TOKEN_STATS, *TURN_STATS, "loss/total"), 0.0)
    # A short last minibatch can leave a rank without rows: it adds zero gradients. Sharded modules
    # need every rank in every forward, so there it runs a row with the loss multiplied by zero.
    stand_in = learner.sharded and not mine.numel()
    if mine.numel() or stand_in:
        rows = index[:1] if stand_in else mine
        loss, own = minibatch_loss(learner, exp, rows, cfg, _global_totals(exp, index) if ctx.active else None)
        loss, stats = (loss * 0.0, stats) if stand_in else (loss, own)
    stats = _reduce_stats(ctx, stats)
    if not torch.isfinite(torch.tensor(stats["loss/total"])):
        return stats, False
    if loss is not None:
        loss.backward()
    params = list(learner.parameters())
    all_reduce_grads(ctx, [p for p in params if not is_sharded(p)])
    norm = clip_grad_norm_(params, cfg.grad_clip, ctx)
    stats["policy/grad_norm"] = float(norm)
    if not torch.isfinite(norm):  # identical on every rank: the gradients were summed first
        learner.optimizer.zero_grad(set_to_none=True)
        return stats, False
    learner.optimizer.step()
    return stats, True


def ppo_update(
    learner: Learner, exp: Experience, cfg: PPOConfig, generator: torch.Generator, ctx: DistContext = SINGLE
) -> dict:
    """Epochs x shuffled minibatches; early stop when approx KL passes cfg.target_kl."""
    totals: dict[str, float] = {}
    steps, stopped, bad = 0, False, False
    n = exp.rows.num_rows
    # Dropout off (eval mode) while training, as TRL does for PPO: the ratio must compare the same
    # function at the first step, and ranks would draw different dropout masks than one process.
    learner.policy.eval()
    learner.critic.eval()
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=generator)  # same generator state on every rank
        epoch_kl = []
        for start in range(0, n, cfg.minibatch_rows):
            stats, applied = minibatch_step(learner, exp, order[start : start + cfg.minibatch_rows], cfg, ctx)
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
    return out
