"""A multi-turn bandit where the exact policy gradient is known: checks the advantage estimators.

    grads = bandit_gradients("rloo", BanditSpec(), batches=2000, seed=0)   # [batches, K]

K arms, one softmax policy pi = softmax(theta) shared by every turn; turn t of an episode pulls an arm
and earns the arm's fixed reward r[a]. A group's episodes (one record) last the same number of turns,
drawn per group (as a scripted user ends all of a record's dialogues at the same turn), so the
baselines never see a member that is missing at a turn; groups differ in length (ragged turns).

J = E[sum_t R_t] = E[T] * pi.r, so the exact gradient is E[T] * pi * (r - pi.r). An estimator's
sampled gradient of one batch is (1 / E) sum_{e,t} A_{e,t} grad log pi(a_{e,t}) with
grad log pi(a) = onehot(a) - pi: the gradient of PPO's clipped loss at ratio 1, summed over episodes.
Used by tests/ppo/test_estimators.py (unbiasedness) and benchmarks/estimator_variance.py (variance).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from cagsr.ppo.estimators import compute_advantages


@dataclass(frozen=True)
class BanditSpec:
    rewards: tuple[float, ...] = (1.0, 0.0, 0.5)
    """r[a]: the reward of each arm, every turn."""
    logits: tuple[float, ...] = (0.2, -0.3, 0.1)
    """theta: the policy's logits (the same at every turn)."""
    lengths: tuple[int, ...] = (1, 2, 3)
    """Episode lengths in turns, drawn uniformly per group."""
    groups: int = 4
    """Groups per batch."""
    group_size: int = 4
    """Episodes per group."""
    noise: float = 0.0
    """Std of Gaussian noise added to each turn's reward (a noisy reward)."""

    @property
    def policy(self) -> Tensor:
        return torch.softmax(torch.tensor(self.logits, dtype=torch.float64), 0)

    def exact_gradient(self) -> Tensor:
        """E[T] * pi * (r - pi.r): [K]."""
        pi, r = self.policy, torch.tensor(self.rewards, dtype=torch.float64)
        mean_length = sum(self.lengths) / len(self.lengths)
        return mean_length * pi * (r - (pi * r).sum())


def sample_batch(spec: BanditSpec, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One batch: (arms [E,T] long, rewards [E,T], turn_mask [E,T] bool, groups [E] long)."""
    n, t_max = spec.groups * spec.group_size, max(spec.lengths)
    arms = torch.multinomial(spec.policy.expand(n * t_max, -1), 1, generator=gen).view(n, t_max)
    lengths = torch.tensor(spec.lengths)[torch.randint(len(spec.lengths), (spec.groups,), generator=gen)]
    groups = torch.arange(n) // spec.group_size
    mask = torch.arange(t_max)[None, :] < lengths[groups][:, None]
    rewards = torch.tensor(spec.rewards, dtype=torch.float64)[arms]
    if spec.noise:
        rewards = rewards + spec.noise * torch.randn(rewards.shape, generator=gen, dtype=torch.float64)
    return arms, rewards, mask, groups


def batch_gradient(spec: BanditSpec, estimator: str, gen: torch.Generator) -> Tensor:
    """(1/E) sum_{e,t} A_{e,t} (onehot(a_{e,t}) - pi) for one sampled batch: [K]."""
    arms, rewards, mask, groups = sample_batch(spec, gen)
    values = torch.zeros_like(rewards)  # the critic estimators see V = 0 (plain REINFORCE)
    adv, _ = compute_advantages(estimator, rewards, values, mask, groups=groups)
    score = torch.nn.functional.one_hot(arms, len(spec.rewards)).double() - spec.policy  # [E,T,K]
    return (adv[..., None] * score * mask[..., None]).sum((0, 1)) / arms.shape[0]


def bandit_gradients(estimator: str, spec: BanditSpec, batches: int, seed: int) -> Tensor:
    """Sampled gradients of `batches` independent batches: [batches, K]."""
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([batch_gradient(spec, estimator, gen) for _ in range(batches)])
