"""Experience: one teacher-forced pass per row gives old log-probs, attention (-> reward) and values.

Per-turn credit: rewards, returns and advantages live on [E, T] (episodes x turns) and every
token of turn t shares its turn's advantage. Token-level PPO libraries (TRL, OpenRLHF, verl)
assign a reward per token or per sequence; here the unit of credit is the turn.

Shapes: R rows, S response tokens, E episodes, T turns per episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from cagsr.ppo import functional as PF
from cagsr.ppo.config import PPOConfig
from cagsr.reward import functional as RF
from cagsr.rollout.episode import Episode
from cagsr.scoring.passes import turn_values
from cagsr.scoring.rows import RowBatch


@dataclass
class Experience:
    rows: RowBatch
    """The teacher-forced rows."""
    old_logprobs: Tensor
    """[R, S] log-probs under the rollout policy."""
    ref_logprobs: Tensor
    """[R, S] log-probs under the frozen reference."""
    old_values: Tensor
    """[R, S] critic values (read at turn starts)."""
    turn_mask: Tensor
    """[E, T] real turns."""
    rewards: Tensor
    """[E, T] R_t."""
    returns: Tensor
    """[E, T] G_t (critic targets)."""
    advantages: Tensor
    """[E, T] whitened advantages."""
    token_advantages: Tensor
    """[R, S] each token's turn advantage."""
    token_returns: Tensor
    """[R, S] each token's turn return."""
    components: dict[str, Tensor] = field(default_factory=dict)
    """[E, T] reward components (coverage, focus, ...)."""


def final_turn_mask(episodes: list[Episode], n_turns: int) -> Tensor:
    mask = torch.zeros(len(episodes), n_turns, dtype=torch.bool)
    for e, ep in enumerate(episodes):
        if ep.final_turn is not None:
            mask[e, ep.final_turn] = True
    return mask


def assemble(
    rows: RowBatch,
    episodes: list[Episode],
    old_logprobs: Tensor,
    ref_logprobs: Tensor,
    values: Tensor,
    rewards: Tensor,
    turn_mask: Tensor,
    components: dict[str, Tensor],
    ppo: PPOConfig,
    final_weight: float,
) -> Experience:
    """Turn rewards -> weighted returns and advantages -> per-token advantages."""
    n_episodes, n_turns = turn_mask.shape
    v_turn = turn_values(values, rows, n_episodes, n_turns)
    weights = RF.turn_weights(turn_mask, final_turn_mask(episodes, n_turns), final_weight)
    advantages, returns = PF.compute_advantages(
        ppo.advantage, rewards, v_turn, turn_mask, weights, gamma=ppo.gamma, lam=ppo.lam
    )
    if ppo.whiten_advantages and int(turn_mask.sum()) > 1:
        advantages = PF.masked_whiten(advantages, turn_mask)
    advantages = advantages * turn_mask
    episode_of_token = rows.row_episode[:, None].expand_as(rows.token_turn)
    valid = rows.token_turn >= 0
    token_adv, token_ret = torch.zeros_like(old_logprobs), torch.zeros_like(old_logprobs)
    token_adv[valid] = advantages[episode_of_token[valid], rows.token_turn[valid]]
    token_ret[valid] = returns[episode_of_token[valid], rows.token_turn[valid]]
    return Experience(
        rows,
        old_logprobs,
        ref_logprobs,
        values,
        turn_mask,
        rewards,
        returns,
        advantages,
        token_adv,
        token_ret,
        components,
    )
