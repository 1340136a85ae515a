"""Per-turn advantage estimators, one registry (`ppo.advantage` names an entry).

Pure tensor functions over an [E, T] table of turn rewards (E episodes, T turns) with a turn mask;
no config, no model. Every estimator takes (weighted rewards [E,T], values [E,T], turn_mask [E,T],
*, groups [E], gamma, lam) and returns (advantages [E,T], returns [E,T]), both 0 on padded turns.

With a critic (the paper's PPO):
  return        A_t = G_t - V(H_t), G_t = sum_{u>=t} lambda_u R_u            (method.md, section 4)
  gae           GAE where one step is one turn
Without one, over groups of episodes rolled out from the same record (`rollout.group_size`):
  grpo          (G_t - mean_g G_t) / std_g G_t                                (DeepSeekMath's GRPO)
  dr_grpo       G_t - mean_g G_t, token sums over a constant                  (Dr. GRPO, Liu et al. 2025)
  rloo          G_t - mean of the group's other episodes' G_t                 (Ahmadian et al. 2024)
  reinforce_pp  G_t - mean over the batch of G_t, whitened over the batch     (REINFORCE++, Hu 2025)

What is per turn here: the group statistics at turn t use only the group's episodes that reached
turn t (a dialogue that ended earlier is not a member at t). A turn whose group has no other
member there (the others ended earlier, or G = 1) has no baseline: its advantage is 0, and the turn
trains nothing. That is the price of a per-turn group baseline when episodes end at different turns:
verl's RFC #7244 discusses the bias of the alternatives when the policy decides when to stop.

RLOO's leave-one-out baseline is unbiased; the group mean of dr_grpo includes the episode itself,
which scales the expected gradient by (n - 1) / n; grpo's std division and reinforce_pp's whitening
rescale it by a batch-dependent factor (tests/ppo/test_estimators.py checks each on a bandit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from cagsr.ppo.functional import masked_mean, masked_whiten, turn_returns

_STD_EPS = 1e-6


def _as_bool(mask: Tensor) -> Tensor:
    return mask if mask.dtype == torch.bool else mask != 0


def _zero_outside(x: Tensor, valid: Tensor) -> Tensor:
    return torch.where(valid, x, torch.zeros_like(x))


# -- with a critic ------------------------------------------------------------------------------------------
def turn_advantages(returns: Tensor, values: Tensor, turn_mask: Tensor) -> Tensor:
    """The "return" estimator: A_t = G_t - V(H_t); 0 on padded turns.

    returns, values, turn_mask: [E,T]. Returns [E,T].
    """
    return _zero_outside(returns - values, _as_bool(turn_mask))


def gae_over_turns(
    rewards: Tensor, values: Tensor, turn_mask: Tensor, gamma: float, lam: float
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation where one step is one turn.

    delta_t = R_t + gamma * V_{next} - V_t, A_t = delta_t + gamma * lam * A_{next},
    where "next" is the next *valid* turn of the row and V after the last valid turn
    is 0 (the episode ends). Padded turns are skipped, so rows may hold different
    numbers of turns (padding on either side, or holes). gamma = lam = 1 reproduces
    the undiscounted Monte-Carlo return.

    rewards, values, turn_mask: [E,T]. Returns (advantages [E,T], returns [E,T]),
    both 0 on padded turns; returns = advantages + values.
    """
    valid = _as_bool(turn_mask)
    rewards = _zero_outside(rewards, valid)
    values = _zero_outside(values, valid)
    next_value = torch.zeros_like(rewards[:, 0])  # [E]
    next_adv = torch.zeros_like(rewards[:, 0])  # [E]
    advantages = torch.zeros_like(rewards)
    # T is a handful of turns: a backward loop over turns is clearer than a scan.
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        adv_t = delta + gamma * lam * next_adv
        # A padded turn carries the running value/advantage through unchanged.
        next_adv = torch.where(valid[:, t], adv_t, next_adv)
        next_value = torch.where(valid[:, t], values[:, t], next_value)
        advantages[:, t] = torch.where(valid[:, t], adv_t, torch.zeros_like(adv_t))
    returns = _zero_outside(advantages + values, valid)
    return advantages, returns


# -- group statistics ---------------------------------------------------------------------------------------
def group_turn_stats(x: Tensor, turn_mask: Tensor, groups: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per episode and turn, statistics of x over its group's episodes that reached that turn.

    x, turn_mask: [E,T]; groups: [E] group id of each episode (any integers).
    Returns (count, mean, unbiased variance), each [E,T]: count is how many members the episode's
    group has at turn t (the episode itself included); the variance is 0 where count < 2.
    Padded entries of x may hold anything (NaN included).
    """
    valid = _as_bool(turn_mask)
    same = (groups[:, None] == groups[None, :]).to(x.dtype)  # [E,E]: 1 where two episodes share a group
    clean = _zero_outside(x, valid)
    count = same @ valid.to(x.dtype)  # [E,T]
    mean = (same @ clean) / count.clamp_min(1)
    # Members of one group share their mean, so each member's squared deviation from it can be summed
    # through the same membership matrix.
    squares = _zero_outside((x - mean) ** 2, valid)
    var = (same @ squares) / (count - 1).clamp_min(1)
    return count, mean, var


def grpo_advantages(returns: Tensor, turn_mask: Tensor, groups: Tensor, *, scale: bool = True) -> Tensor:
    """GRPO per turn: A_t = (G_t - mean_g) / (std_g + 1e-6) over the group's episodes at turn t.

    scale=False leaves out the std division (Dr. GRPO). std is the unbiased sample std. A turn with
    no other group member at its index gets 0. returns, turn_mask: [E,T]; groups: [E]. Returns [E,T].
    """
    valid = _as_bool(turn_mask)
    count, mean, var = group_turn_stats(returns, valid, groups)
    adv = returns - mean
    if scale:
        adv = adv / (var.sqrt() + _STD_EPS)
    return _zero_outside(adv, valid & (count >= 2))


def rloo_advantages(returns: Tensor, turn_mask: Tensor, groups: Tensor) -> Tensor:
    """RLOO per turn: A_t = G_t - mean of G_t over the group's *other* episodes that reached turn t.

    Equal to n / (n - 1) * (G_t - mean_g) for n members at t; 0 where n < 2.
    returns, turn_mask: [E,T]; groups: [E]. Returns [E,T].
    """
    valid = _as_bool(turn_mask)
    count, mean, _ = group_turn_stats(returns, valid, groups)
    adv = count / (count - 1).clamp_min(1) * (returns - mean)
    return _zero_outside(adv, valid & (count >= 2))


def reinforce_pp_advantages(returns: Tensor, turn_mask: Tensor) -> Tensor:
    """REINFORCE++ per turn: G_t minus the batch mean of G_t over the episodes at turn t, then
    whitened over every real turn of the batch. No group, no critic; a turn that only one episode
    reached gets 0 before the whitening. returns, turn_mask: [E,T]. Returns [E,T]."""
    valid = _as_bool(turn_mask)
    batch = torch.zeros(returns.shape[0], dtype=torch.long, device=returns.device)
    count, mean, _ = group_turn_stats(returns, valid, batch)
    centred = _zero_outside(returns - mean, valid & (count >= 2))
    if int(valid.sum()) < 2:
        return centred
    return masked_whiten(centred, valid)


# -- the registry -------------------------------------------------------------------------------------------
def _undiscounted(rewards: Tensor, turn_mask: Tensor) -> Tensor:
    # The spec's return is undiscounted; the turn weights arrive already multiplied into the rewards.
    return turn_returns(rewards, torch.ones_like(rewards), turn_mask)


def _return(rewards, values, turn_mask, *, groups, gamma, lam):
    returns = _undiscounted(rewards, turn_mask)
    return turn_advantages(returns, values, turn_mask), returns


def _gae(rewards, values, turn_mask, *, groups, gamma, lam):
    return gae_over_turns(rewards, values, turn_mask, gamma, lam)


def _grpo(rewards, values, turn_mask, *, groups, gamma, lam):
    returns = _undiscounted(rewards, turn_mask)
    return grpo_advantages(returns, turn_mask, groups), returns


def _dr_grpo(rewards, values, turn_mask, *, groups, gamma, lam):
    returns = _undiscounted(rewards, turn_mask)
    return grpo_advantages(returns, turn_mask, groups, scale=False), returns


def _rloo(rewards, values, turn_mask, *, groups, gamma, lam):
    returns = _undiscounted(rewards, turn_mask)
    return rloo_advantages(returns, turn_mask, groups), returns


def _reinforce_pp(rewards, values, turn_mask, *, groups, gamma, lam):
    returns = _undiscounted(rewards, turn_mask)
    return reinforce_pp_advantages(returns, turn_mask), returns


@dataclass(frozen=True)
class Estimator:
    """One entry of ADVANTAGE_ESTIMATORS."""

    fn: Callable[..., tuple[Tensor, Tensor]]
    """(weighted rewards, values, turn_mask, *, groups, gamma, lam) -> (advantages, returns), all [E,T]."""
    uses_critic: bool
    """Needs V(H_t): a critic is trained and scored. False: no value head, no critic pass, no value loss."""
    groups: bool
    """Reads `rollout.group_size` groups (a group size of 1 leaves every turn without a baseline)."""
    whiten: bool
    """Whiten the advantages over the batch by default (`ppo.whiten_advantages` unset)."""
    constant_token_norm: bool = False
    """The policy loss sums token terms over a constant (episodes x their token budget) instead of
    averaging over the minibatch's tokens (Dr. GRPO): a reply's length does not change its tokens' weight."""


ADVANTAGE_ESTIMATORS: dict[str, Estimator] = {
    "return": Estimator(_return, uses_critic=True, groups=False, whiten=True),
    "gae": Estimator(_gae, uses_critic=True, groups=False, whiten=True),
    "grpo": Estimator(_grpo, uses_critic=False, groups=True, whiten=False),
    "dr_grpo": Estimator(_dr_grpo, uses_critic=False, groups=True, whiten=False, constant_token_norm=True),
    "rloo": Estimator(_rloo, uses_critic=False, groups=True, whiten=False),
    "reinforce_pp": Estimator(_reinforce_pp, uses_critic=False, groups=False, whiten=False),
}
"""`ppo.advantage` -> estimator (verl's registry, per turn)."""


def estimator(name: str) -> Estimator:
    if name not in ADVANTAGE_ESTIMATORS:
        known = ", ".join(sorted(ADVANTAGE_ESTIMATORS))
        raise ValueError(f"unknown advantage estimator {name!r}; known: {known}")
    return ADVANTAGE_ESTIMATORS[name]


def compute_advantages(
    name: str,
    rewards: Tensor,
    values: Tensor | None,
    turn_mask: Tensor,
    weights: Tensor | None = None,
    *,
    groups: Tensor | None = None,
    gamma: float = 1.0,
    lam: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Per-turn advantages and returns with the estimator registered under `name`.

    The turn weights lambda_u (method.md section 4) scale each turn's reward before the estimator
    runs, so "return" gives A = G - V with G = sum_{u>=t} lambda_u R_u, and "gae" with
    gamma = lam = 1 gives the same numbers.

    rewards, values, turn_mask, weights: [E,T] (values None without a critic); groups: [E] group id
    of each episode (None: every episode its own group). Returns (advantages, returns) [E,T].
    """
    spec = estimator(name)
    valid = _as_bool(turn_mask)
    weighted = _zero_outside(rewards if weights is None else weights * rewards, valid)
    if values is None:
        if spec.uses_critic:
            raise ValueError(f"advantage estimator {name!r} needs critic values")
        values = torch.zeros_like(weighted)
    if groups is None:
        groups = torch.arange(rewards.shape[0], device=rewards.device)
    return spec.fn(weighted, values, turn_mask, groups=groups, gamma=gamma, lam=lam)


def solo_turn_share(turn_mask: Tensor, groups: Tensor) -> Tensor:
    """Share of the real turns whose group has no other member at that turn index (advantage 0 under
    the group estimators): a scalar. turn_mask: [E,T]; groups: [E]."""
    valid = _as_bool(turn_mask)
    count, _, _ = group_turn_stats(torch.zeros(valid.shape), valid, groups)
    return masked_mean((count < 2).float(), valid)
