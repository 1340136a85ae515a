"""The PPO update: several epochs of shuffled minibatches over the rows of one Experience.

    stats = ppo_update(policy_model, critic, value_head_on_policy, optimizers, exp, cfg, generator)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cagsr.attention.capture import forward_no_capture
from cagsr.models.forward import token_logprobs
from cagsr.ppo import functional as PF
from cagsr.ppo.config import PPOConfig
from cagsr.ppo.experience import Experience


@dataclass
class Learner:
    """What the update trains: the policy, its critic, and their optimizers."""

    policy: nn.Module
    critic: nn.Module
    critic_is_head: bool
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler

    def parameters(self):
        yield from (p for p in self.policy.parameters() if p.requires_grad)
        yield from self.critic.parameters()


def minibatch_loss(learner: Learner, exp: Experience, index: Tensor, cfg: PPOConfig) -> tuple[Tensor, dict]:
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
    v_loss, v_stats = PF.value_loss(values, exp.old_values[index].to(device), exp.token_returns[index].to(device),
                                    rows.turn_start, cfg.value_clip)
    loss = pg_loss + cfg.kl_coef * kl + cfg.vf_coef * v_loss
    with torch.no_grad():
        entropy = PF.masked_mean(PF.entropy_from_logits(logits), mask)
    stats = {"loss/policy": pg_loss.item(), "loss/value": v_loss.item(), "loss/kl": kl.item(),
             "loss/total": loss.item(), "policy/clip_frac": float(pg_stats["clip_frac"]),
             "policy/approx_kl": float(pg_stats["approx_kl"]), "policy/entropy": entropy.item(),
             "value/clip_frac": float(v_stats["clip_frac"])}
    return loss, stats


def ppo_update(learner: Learner, exp: Experience, cfg: PPOConfig, generator: torch.Generator) -> dict:
    """Epochs x shuffled minibatches; early stop when approx KL passes cfg.target_kl."""
    totals: dict[str, float] = {}
    steps, stopped = 0, False
    n = exp.rows.num_rows
    learner.policy.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=generator)
        epoch_kl = []
        for start in range(0, n, cfg.minibatch_rows):
            index = order[start : start + cfg.minibatch_rows]
            loss, stats = minibatch_loss(learner, exp, index, cfg)
            if not torch.isfinite(loss):
                raise FloatingPointError("non-finite PPO loss")
            learner.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            stats["policy/grad_norm"] = float(torch.nn.utils.clip_grad_norm_(list(learner.parameters()), cfg.grad_clip))
            learner.optimizer.step()
            epoch_kl.append(stats["policy/approx_kl"])
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + v
            steps += 1
        if cfg.target_kl is not None and sum(epoch_kl) / len(epoch_kl) > cfg.target_kl:
            stopped = True
            break
    learner.scheduler.step()
    learner.policy.eval()
    out = {k: v / max(1, steps) for k, v in totals.items()}
    out |= {"policy/early_stop": float(stopped), "policy/updates": float(steps),
            "policy/lr": learner.scheduler.get_last_lr()[0]}
    return out
