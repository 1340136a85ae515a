"""Pure PPO math with per-turn credit (method.md, section 4).

Plain tensors and floats in, tensors out; no config, no model, no I/O. Shapes use
B batch, T turns, S response tokens (S_total: all tokens of an episode's sequence).
Masks may be bool or 0/1 float; masked entries may hold any value (NaN included)
and are selected away with `torch.where`, never multiplied by zero.

Credit assignment is per turn: a turn earns one reward R_t, the estimators of
`cagsr.ppo.estimators` run over turns (the step is a turn, not a token), and
`broadcast_turn_to_tokens` hands every token of y_t its turn's advantage. TRL,
OpenRLHF and verl assign rewards per token or per sequence, not per turn, which is
why this module exists.

Turn weights and returns (method.md section 4) live here too: the reward stage
(cagsr/reward/combine.py) hands over rewards [B,T]; everything after that is credit
assignment. `turn_values` reads the critic's V(H_t) off the token values.

Style follows cleanrl: small functions, one formula each.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

_EPS = 1e-8


def _as_bool(mask: Tensor) -> Tensor:
    return mask if mask.dtype == torch.bool else mask != 0


def masked_mean(x: Tensor, mask: Tensor, dim: int | tuple[int, ...] | None = None) -> Tensor:
    """Mean of x over the entries where mask is set (0 where nothing is set).

    x, mask: same shape (mask may broadcast). dim=None reduces everything to a scalar.
    """
    valid = _as_bool(mask).expand_as(x)
    total = torch.where(valid, x, torch.zeros_like(x))
    if dim is None:
        return total.sum() / valid.sum().clamp_min(1)
    return total.sum(dim) / valid.sum(dim).clamp_min(1)


def masked_var(x: Tensor, mask: Tensor) -> Tensor:
    """Population variance (unbiased=False) of x over the masked entries; a scalar."""
    mean = masked_mean(x, mask)
    return masked_mean((x - mean) ** 2, mask)


def masked_whiten(x: Tensor, mask: Tensor, shift_mean: bool = True) -> Tensor:
    """(x - mean) / sqrt(var + 1e-8), statistics over the masked entries only.

    shift_mean=False adds the mean back (scale only). Masked entries come back as 0.
    """
    mean = masked_mean(x, mask)
    var = masked_var(x, mask)
    whitened = (x - mean) * torch.rsqrt(var + _EPS)
    if not shift_mean:
        whitened = whitened + mean
    return torch.where(_as_bool(mask).expand_as(x), whitened, torch.zeros_like(x))


def turn_weights(turn_mask: Tensor, final_turn_mask: Tensor, final_weight: float) -> Tensor:
    """Turn weights lambda [B,T]: 1 per turn, `final_weight` on the answer turn, 0 on padding.

    final_weight = 1 is the "uniform weights" ablation. turn_mask, final_turn_mask: [B,T].
    """
    valid = _as_bool(turn_mask)
    final = _as_bool(final_turn_mask) & valid
    dtype = torch.get_default_dtype()
    ones = torch.ones(valid.shape, dtype=dtype, device=valid.device)
    weights = torch.where(final, torch.full_like(ones, final_weight), ones)
    return torch.where(valid, weights, torch.zeros_like(ones))


def turn_returns(rewards: Tensor, weights: Tensor, turn_mask: Tensor) -> Tensor:
    """Undiscounted weighted return G_t = sum_{u >= t} lambda_u * R_u.

    Padded turns (anywhere in the row) add nothing and get G = 0.
    rewards, weights, turn_mask: [B,T]. Returns [B,T].
    """
    valid = _as_bool(turn_mask)
    weighted = torch.where(valid, weights * rewards, torch.zeros_like(rewards))
    # Reverse cumulative sum: suffix sums over later turns.
    suffix = weighted.flip(-1).cumsum(-1).flip(-1)
    return torch.where(valid, suffix, torch.zeros_like(suffix))


def turn_values(values: Tensor, turn_start: Tensor, row_episode: Tensor, token_turn: Tensor, n_episodes: int,
                n_turns: int) -> Tensor:
    """Token values read at turn starts -> V(H_t) per (episode, turn).

    values, turn_start (bool: the first token of a turn), token_turn: [R,S] over R rows of
    E episodes; row_episode: [R]. Returns [E,T] (0 where a turn has no row).
    """
    out = torch.zeros(n_episodes, n_turns, dtype=values.dtype, device=values.device)
    r, s = _as_bool(turn_start).nonzero(as_tuple=True)
    out[row_episode[r], token_turn[r, s]] = values[r, s]
    return out


def broadcast_turn_to_tokens(turn_values: Tensor, token_turn: Tensor) -> Tensor:
    """Give every token its turn's value (advantage, return, reward).

    turn_values: [B,T]; token_turn: [B,S_total] turn index of each token, -1 for
    tokens outside any response (prompt, template, padding), which get 0.
    Returns [B,S_total].
    """
    inside = token_turn >= 0
    picked = turn_values.gather(1, token_turn.clamp_min(0).long())
    return torch.where(inside, picked, torch.zeros_like(picked))


def policy_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    response_mask: Tensor,
    clip_eps: float,
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO clipped surrogate, averaged over all masked tokens of the batch.

    L = -mean(min(r * A, clip(r, 1 - eps, 1 + eps) * A)), r = exp(logp - logp_old).
    Stats (detached): clip_frac (share of tokens where the clipped term is active),
    approx_kl (k3: mean((r - 1) - log r)), ratio_mean.

    logprobs, old_logprobs, advantages, response_mask: [B,S]. Returns (scalar, stats).
    """
    valid = _as_bool(response_mask)
    # Zero the log-ratio on padding before exp() so garbage cannot overflow to inf.
    log_ratio = torch.where(valid, logprobs - old_logprobs, torch.zeros_like(logprobs))
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps)
    loss = masked_mean(torch.maximum(unclipped, clipped), valid)
    with torch.no_grad():
        stats = {
            "clip_frac": masked_mean((clipped > unclipped).to(ratio.dtype), valid),
            "approx_kl": masked_mean((ratio - 1.0) - log_ratio, valid),
            "ratio_mean": masked_mean(ratio, valid),
        }
    return loss, stats


def value_loss(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    clip_eps: float | None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Critic loss 0.5 * max((V - G)^2, (clip(V, V_old - eps, V_old + eps) - G)^2).

    clip_eps=None disables clipping: 0.5 * (V - G)^2. Averaged over masked entries.
    values, old_values, returns, mask: same shape ([B,T] per turn or [B,S] per token).
    Returns (scalar, stats: clip_frac, value_mean).
    """
    valid = _as_bool(mask)
    unclipped = (values - returns) ** 2
    if clip_eps is None:
        per_entry = unclipped
        clip_frac = torch.zeros((), dtype=values.dtype, device=values.device)
    else:
        clipped_values = old_values + (values - old_values).clamp(-clip_eps, clip_eps)
        clipped = (clipped_values - returns) ** 2
        per_entry = torch.maximum(unclipped, clipped)
        clip_frac = masked_mean((clipped > unclipped).to(values.dtype), valid).detach()
    loss = 0.5 * masked_mean(per_entry, valid)
    stats = {"clip_frac": clip_frac, "value_mean": masked_mean(values, valid).detach()}
    return loss, stats


def kl_penalty(logprobs: Tensor, ref_logprobs: Tensor, kind: Literal["k1", "k2", "k3"] = "k1") -> Tensor:
    """Per-token KL(pi || pi_ref) estimate from sampled-token log-probs (Schulman's k1/k2/k3).

    k1 = log r, k2 = 0.5 * (log r)^2, k3 = (1/r - 1) + log r with log r = logp - logp_ref;
    k3 is unbiased and never negative. Any shape in, the same shape out.
    """
    log_ratio = logprobs - ref_logprobs
    if kind == "k1":
        return log_ratio
    if kind == "k2":
        return 0.5 * log_ratio**2
    if kind == "k3":
        # exp(-log r) explodes for a token the policy has stopped producing; verl clamps the same way.
        log_ratio = log_ratio.clamp(-10.0, 10.0)
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {kind!r}; known: k1, k2, k3")


def explained_variance(values: Tensor, returns: Tensor, mask: Tensor) -> Tensor:
    """1 - Var(G - V) / Var(G) over the masked entries (cleanrl's critic diagnostic).

    1 is a perfect critic, 0 no better than a constant; NaN when Var(G) is 0 (undefined).
    values, returns, mask: same shape. Returns a scalar tensor.
    """
    var_returns = masked_var(returns, mask)
    var_residual = masked_var(returns - values, mask)
    nan = torch.full_like(var_returns, float("nan"))
    return torch.where(var_returns > 0, 1.0 - var_residual / var_returns, nan)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy of softmax(logits) over the last dim, stable for large and -inf logits.

    logits: [..., V]. Returns [...].
    """
    logp = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    p = logp.exp()
    # -inf logits (masked vocabulary) have p = 0: count them as 0 * log 0 = 0.
    plogp = torch.where(p > 0, p * logp, torch.zeros_like(p))
    return -plogp.sum(-1)
