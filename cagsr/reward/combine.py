"""The reward a run trains on, per turn: the attention reward, another reward, or (later) a mix.

    turn_reward = build_turn_reward(job.reward)
    total, parts = turn_reward(episodes, attention, job)   # [E, T] each; parts are logged under reward/

Shapes: E episodes, T turns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from cagsr.reward.config import RewardConfig
from cagsr.reward.registry import TurnRewardFn, get_reward
from cagsr.rollout.episode import Episode


@dataclass(frozen=True, kw_only=True)
class TurnReward:
    """reward.kind resolved once at start-up."""

    kind: str
    """The configured reward.kind."""
    other: TurnRewardFn | None
    """The non-attention reward function, None for the attention reward alone."""

    def __call__(self, episodes: list[Episode], attention: Tensor, job) -> tuple[Tensor, dict[str, Tensor]]:
        """attention [E, T] (the attention reward of each turn) -> total [E, T] and named parts [E, T]."""
        if self.other is None:
            return attention, {}
        own = self.other(episodes, job).float()
        total = torch.zeros_like(attention)
        total[:, : own.shape[1]] = own[:, : attention.shape[1]]
        return total, {"task_reward": total}


def build_turn_reward(cfg: RewardConfig) -> TurnReward:
    return TurnReward(kind=cfg.kind, other=None if cfg.kind == "attention" else get_reward(cfg.kind))
