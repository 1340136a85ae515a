"""Experience: the scored batch (log-probs, values, turn rewards) with its turn advantages.

Per-turn credit: rewards, returns and advantages live on [E, T] (episodes x turns) and every
token of turn t shares its turn's advantage. Token-level PPO libraries (TRL, OpenRLHF, verl)
assign a reward per token or per sequence; here the unit of credit is the turn.

Shapes: R rows, S response tokens, E episodes, T turns per episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from cagsr.ppo import estimators as PE
from cagsr.ppo import functional as PF
from cagsr.ppo.config import PPOConfig
from cagsr.rollout.episode import Episode
from cagsr.scoring.passes import ScoredPart
from cagsr.scoring.rows import RowBatch


@dataclass(kw_only=True)
class Experience:
    """One batch ready for the update, grouped by shape."""

    rows: RowBatch
    """The teacher-forced rows (per-turn views)."""
    # [R, S]: per response token
    old_logprobs: Tensor
    """[R, S] log-probs under the rollout policy."""
    ref_logprobs: Tensor
    """[R, S] log-probs under the frozen reference."""
    old_values: Tensor
    """[R, S] critic values (read at turn starts); zeros without a critic."""
    token_advantages: Tensor
    """[R, S] each token's turn advantage."""
    token_returns: Tensor
    """[R, S] each token's turn return."""
    # [E, T]: per turn
    turn_mask: Tensor
    """[E, T] real turns."""
    rewards: Tensor
    """[E, T] R_t."""
    returns: Tensor
    """[E, T] G_t (critic targets)."""
    advantages: Tensor
    """[E, T] whitened advantages."""
    components: dict[str, Tensor] = field(default_factory=dict)
    """[E, T] reward components (coverage, focus, ...)."""
    # [E]: per episode
    groups: Tensor
    """[E] group id of each episode: the episodes rolled out from one record (rollout.group_size)."""
    # scalars
    episode_token_budget: float | None = None
    """Most response tokens an episode may generate, set when the estimator divides the token loss by a constant
    (Dr. GRPO) instead of the tokens sampled; None: the minibatch's token mean."""


def final_turn_mask(episodes: list[Episode], n_turns: int) -> Tensor:
    mask = torch.zeros(len(episodes), n_turns, dtype=torch.bool)
    for e, ep in enumerate(episodes):
        if ep.final_turn is not None:
            mask[e, ep.final_turn] = True
    return mask


def _token_budget(spec: PE.Estimator, budget: int | None) -> float | None:
    if not spec.constant_token_norm:
        return None
    if not budget:
        raise ValueError("this estimator divides the token loss by a constant: pass episode_token_budget")
    return float(budget)


def assemble(*, rows: RowBatch, episodes: list[Episode], scored: ScoredPart, ppo: PPOConfig,
             final_weight: float, group_size: int = 1, episode_token_budget: int | None = None) -> Experience:
    """Turn rewards -> weighted returns and advantages [E, T] -> every token's turn advantage [R, S].

    Episodes arrive in groups of `group_size` consecutive episodes of one record (the rollout's order);
    `episode_token_budget` is what Dr. GRPO's token loss is divided by per episode."""
    turn_mask = scored.components["turn_mask"]
    n_episodes, n_turns = turn_mask.shape
    spec = PE.estimator(ppo.advantage)
    v_turn = (PF.turn_values(scored.values, rows.turn_start, rows.row_episode, rows.token_turn, n_episodes, n_turns)
              if spec.uses_critic else None)
    weights = PF.turn_weights(turn_mask, final_turn_mask(episodes, n_turns), final_weight)
    groups = torch.arange(n_episodes) // group_size
    advantages, returns = PE.compute_advantages(
        ppo.advantage, scored.rewards, v_turn, turn_mask, weights, groups=groups, gamma=ppo.gamma, lam=ppo.lam
    )
    whiten = spec.whiten if ppo.whiten_advantages is None else ppo.whiten_advantages
    if whiten and int(turn_mask.sum()) > 1:
        advantages = PF.masked_whiten(advantages, turn_mask)
    advantages = advantages * turn_mask
    return Experience(
        rows=rows,
        old_logprobs=scored.old_logprobs,
        ref_logprobs=scored.ref_logprobs,
        old_values=scored.values,
        token_advantages=PF.broadcast_turn_to_tokens(advantages[rows.row_episode], rows.token_turn),
        token_returns=PF.broadcast_turn_to_tokens(returns[rows.row_episode], rows.token_turn),
        turn_mask=turn_mask,
        rewards=scored.rewards,
        returns=returns,
        advantages=advantages,
        components=scored.components,
        groups=groups,
        episode_token_budget=_token_budget(spec, episode_token_budget),
    )
