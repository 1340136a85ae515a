"""Pure tensor math of the history-aware attention reward (method.md, sections 3 and 4).

Every function takes plain tensors and floats and returns tensors: no config, no I/O,
no model. Shapes use B batch, T turns, S response tokens, N history tokens, K blocks.

`abar` [B,S,N] is the attention of each response token over the history, reduced over
the captured layers and heads, each valid row summing to 1 over the valid history
columns. Masks (`response_mask` [B,S], `history_mask` [B,N], `salient_mask` [B,N],
`turn_mask` [B,T]) may be bool or 0/1 float. Masked positions may hold any value,
NaN included: they are selected away with `torch.where`, never multiplied by zero,
so padding can never leak into a result.

One turn:   C = coverage, E = attention_entropy, F = focus(E, entropy_floor(t)),
            floor_fraction(E, entropy_floor(t)) = where F's clamp binds,
            P = history_repetition, R = turn_reward(C, F, P)
(Turn weights and returns over an episode live beside the advantages: ppo/functional.py.)
CoT:        block_pool the rows first, then coverage/focus with block_mask.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _as_bool(mask: Tensor) -> Tensor:
    return mask if mask.dtype == torch.bool else mask != 0


def _count(mask: Tensor) -> Tensor:
    """Number of valid entries along the last dim, at least 1 so empty rows divide to 0."""
    return mask.sum(-1).clamp_min(1)


def _per_row(tau: Tensor | float, entropy: Tensor) -> Tensor:
    """tau ([B], 0-d or a float) shaped to broadcast over entropy [B,S]: every token of row b uses tau_b."""
    tau_t = torch.as_tensor(tau, dtype=entropy.dtype, device=entropy.device)
    return tau_t[:, None] if tau_t.dim() == 1 else tau_t


def coverage(abar: Tensor, salient_mask: Tensor, response_mask: Tensor) -> Tensor:
    """Attention mass on salient history tokens, averaged over the response.

    C = (1/|y|) * sum_s sum_{j in S} abar[s, j]; 0 for an empty response.

    abar: [B,S,N]; salient_mask: [B,N] (must already be False on padded history
    columns); response_mask: [B,S]. Returns [B].
    """
    salient = _as_bool(salient_mask)[:, None, :]  # [B,1,N]
    resp = _as_bool(response_mask)
    keep = salient & resp[:, :, None]  # [B,S,N]
    mass = torch.where(keep, abar, torch.zeros_like(abar)).sum(dim=(1, 2))  # [B]
    return mass / _count(resp)


def attention_entropy(abar: Tensor, history_mask: Tensor) -> Tensor:
    """Shannon entropy (nats) of each attention row over the valid history columns.

    E_s = -sum_j abar[s, j] * log abar[s, j], with 0 log 0 = 0. For a row that is a
    distribution over N_valid columns the value lies in [0, log N_valid]; a fully
    masked row gives 0.

    abar: [B,S,N]; history_mask: [B,N]. Returns [B,S].
    """
    valid = _as_bool(history_mask)[:, None, :]  # [B,1,N]
    p = torch.where(valid, abar, torch.zeros_like(abar))
    positive = p > 0
    # Second where keeps log() away from 0 and negatives so neither the value nor the
    # gradient can turn into NaN.
    safe_p = torch.where(positive, p, torch.ones_like(p))
    plogp = torch.where(positive, p * safe_p.log(), torch.zeros_like(p))
    return -plogp.sum(-1)


def entropy_floor(turn_index: Tensor | int | float, tau0: float, kappa: float) -> Tensor:
    """Entropy floor of a turn: tau_t = tau0 + kappa * t.

    turn_index: any shape (usually [B]) or a Python number; the caller picks the turn
    numbering (the spec counts turns from 1). tau0 = -inf is the "no entropy
    clamping" ablation and returns -inf (never NaN) for finite kappa * t.
    """
    t = torch.as_tensor(turn_index)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if math.isinf(tau0):
        # -inf + kappa * t is -inf for finite t; skip the arithmetic so that a kappa
        # of 0 times an infinite t cannot produce NaN either.
        return torch.full_like(t, tau0)
    return tau0 + kappa * t


def focus(entropy: Tensor, tau: Tensor | float, response_mask: Tensor) -> Tensor:
    """Negative clamped attention entropy, averaged over the response.

    F = -(1/|y|) * sum_s max(E_s, tau). Clamping at tau means lowering the entropy
    below the floor earns nothing, so F <= -tau for a non-empty response. An empty
    response gives 0.

    entropy: [B,S]; tau: [B], 0-d or a float (-inf disables clamping);
    response_mask: [B,S]. Returns [B].
    """
    clamped = torch.maximum(entropy, _per_row(tau, entropy))  # [B,S]
    resp = _as_bool(response_mask)
    total = torch.where(resp, clamped, torch.zeros_like(clamped)).sum(-1)
    return -total / _count(resp)


def floor_fraction(entropy: Tensor, tau: Tensor | float, response_mask: Tensor) -> Tensor:
    """Share of response tokens whose attention entropy lies below the floor tau.

    The tokens where focus's clamp binds: 0 means the floor never changed F, so an
    ablation that removes it cannot differ. 0 for an empty response or tau = -inf.

    entropy: [B,S]; tau: [B], 0-d or a float; response_mask: [B,S]. Returns [B].

    >>> floor_fraction(torch.tensor([[0.5, 2.0, 0.1]]), 1.0, torch.tensor([[1, 1, 0]]))
    tensor([0.5000])
    """
    below = _as_bool(response_mask) & (entropy < _per_row(tau, entropy))  # [B,S]
    return below.sum(-1).to(entropy.dtype) / _count(_as_bool(response_mask)).to(entropy.dtype)


def _ngram_windows(ids: Tensor, mask: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """All length-n windows of ids [B,L] -> ([B,L-n+1,n], valid [B,L-n+1]).

    A window is an n-gram only when all of its n positions are valid, so padding (and
    a hole in the mask) never creates an n-gram.
    """
    length = ids.shape[1]
    if length < n:
        b = ids.shape[0]
        return ids.new_zeros(b, 0, n), mask.new_zeros(b, 0, dtype=torch.bool)
    windows = ids.unfold(1, n, 1)  # [B,L-n+1,n]
    valid = _as_bool(mask).unfold(1, n, 1).all(-1)  # [B,L-n+1]
    return windows, valid


def history_repetition(
    response_ids: Tensor,
    response_mask: Tensor,
    history_ids: Tensor,
    history_mask: Tensor,
    n: int,
) -> Tensor:
    """Share of the response's n-grams that already occur somewhere in the history.

    P = (# n-grams of y found in H) / max(1, # n-grams of y), on token ids, counting
    response n-grams with multiplicity. Exact (no hashing): each (row, n-gram) key is
    mapped to an integer id by one `torch.unique` over response and history n-grams of
    the whole batch, then matched with a single `torch.isin`.

    response_ids: [B,S]; response_mask: [B,S]; history_ids: [B,N]; history_mask: [B,N].
    Returns [B] in [0, 1].
    """
    if n < 1:
        raise ValueError(f"n-gram size must be >= 1, got {n}")
    batch = response_ids.shape[0]
    resp_win, resp_valid = _ngram_windows(response_ids.long(), response_mask, n)
    hist_win, hist_valid = _ngram_windows(history_ids.long(), history_mask, n)

    # Prefix every n-gram with its row so rows never match each other.
    rows = torch.arange(batch, device=response_ids.device)
    resp_row = rows[:, None].expand_as(resp_valid)[resp_valid]  # [M_y]
    hist_row = rows[:, None].expand_as(hist_valid)[hist_valid]  # [M_h]
    resp_keys = torch.cat([resp_row[:, None], resp_win[resp_valid]], dim=1)  # [M_y,n+1]
    hist_keys = torch.cat([hist_row[:, None], hist_win[hist_valid]], dim=1)  # [M_h,n+1]

    found = torch.zeros(batch, dtype=torch.float64, device=response_ids.device)
    if resp_keys.shape[0] > 0 and hist_keys.shape[0] > 0:
        _, ids = torch.unique(torch.cat([resp_keys, hist_keys]), dim=0, return_inverse=True)
        hit = torch.isin(ids[: resp_keys.shape[0]], ids[resp_keys.shape[0] :])  # [M_y]
        found.index_add_(0, resp_row, hit.to(found.dtype))
    total = resp_valid.sum(-1).clamp_min(1).to(found.dtype)
    return (found / total).to(torch.get_default_dtype())


def block_pool(abar: Tensor, response_mask: Tensor, block_tokens: int) -> tuple[Tensor, Tensor]:
    """Pool attention rows into chain-of-thought checkpoints of `block_tokens` tokens.

    The i-th valid response token (in order, whatever the padding side) joins block
    i // block_tokens; a block's row is the mean of its tokens' rows, so it is still a
    distribution, and a partial last block counts. K = ceil(S / block_tokens) keeps the
    shape static; blocks beyond a row's length are masked out. Coverage and focus on
    (abar_blocks, block_mask) give the CoT checkpoint reward.

    abar: [B,S,N]; response_mask: [B,S].
    Returns abar_blocks [B,K,N] (0 on empty blocks) and block_mask [B,K] (bool).
    """
    if block_tokens < 1:
        raise ValueError(f"block_tokens must be >= 1, got {block_tokens}")
    resp = _as_bool(response_mask)
    num_blocks = -(-abar.shape[1] // block_tokens)
    rank = resp.long().cumsum(-1) - 1  # [B,S] index among valid tokens
    block = rank.div(block_tokens, rounding_mode="floor")  # [B,S]
    arange_k = torch.arange(num_blocks, device=abar.device)
    member = (block[:, :, None] == arange_k) & resp[:, :, None]  # [B,S,K]

    clean = torch.where(resp[:, :, None], abar, torch.zeros_like(abar))  # [B,S,N]
    sums = torch.einsum("bsk,bsn->bkn", member.to(abar.dtype), clean)  # [B,K,N]
    counts = member.sum(1)  # [B,K]
    block_mask = counts > 0
    return sums / counts.clamp_min(1)[:, :, None].to(abar.dtype), block_mask


def turn_reward(
    coverage: Tensor, focus: Tensor, repetition: Tensor, alpha: float, beta: float, gamma: float
) -> Tensor:
    """R = alpha * C + beta * F - gamma * P. All inputs [B] (or any common shape)."""
    return alpha * coverage + beta * focus - gamma * repetition


def single_turn_history_mask(token_turn: Tensor, current_turn: Tensor | int) -> Tensor:
    """Mask of the history tokens that belong to the current prompt x_t only.

    This is the single-turn baseline and the "no history coverage" ablation: use it as
    the history (or intersect it with the salient mask) so coverage sees x_t only.
    token_turn: [B,N] turn index of each history token, -1 for template/padding;
    current_turn: [B] or an int. Returns bool [B,N].
    """
    current = torch.as_tensor(current_turn, device=token_turn.device)
    if current.dim() == 1:
        current = current[:, None]
    return (token_turn == current) & (token_turn >= 0)
