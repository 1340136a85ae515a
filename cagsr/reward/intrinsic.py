"""Intrinsic log-prob signals of a reply, from the logits the teacher-forced pass already computes.

    signals = intrinsic_components(logits, response_ids, response_mask, token_turn, turn_index)
    signals["self_certainty"]    # [R, T'] mean KL(uniform || p) over each turn's tokens

No second forward pass: the logits are the capture pass's own (scoring/passes.py). The signals:
  logprob             mean log p(y_s | history, y_<s) over the turn's tokens (the reply's likelihood)
  predictive_entropy  mean entropy H(p_s) of the next-token distribution (EM-RL, RENT minimise it)
  self_certainty      mean KL(U || p_s) = -log V - (1/V) sum_v log p_s(v) (Intuitor / RLIF)
  length_tokens       the turn's tokens (a control: length alone tracks human scores on the ratings sets)

Shapes: R rows, S response tokens, V vocabulary, T' turns present in the rows.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

INTRINSIC = ("logprob", "predictive_entropy", "self_certainty", "length_tokens")
"""Per-turn signals read from the pass's logits (besides the attention reward's components)."""


def token_signals(logits: Tensor, tokens: Tensor) -> dict[str, Tensor]:
    """Per-token log-prob of the taken token, predictive entropy and self-certainty, from one log_softmax.

    logits [R, S, V] (any float dtype; computed in float32), tokens [R, S] long. Returns three [R, S]
    tensors: logprob = log p(token), predictive_entropy = -sum_v p log p (nats, in [0, log V]),
    self_certainty = KL(U || p) = -log V - mean_v log p(v) (0 for the uniform p, large when p is peaked).
    """
    logp = F.log_softmax(logits.float(), dim=-1)  # [R, S, V]
    vocab = logp.shape[-1]
    # p log p with p = 0 gives -inf * 0 = NaN; exp(logp) is exactly 0 there, so select it away.
    plogp = torch.where(logp > -math.inf, logp.exp() * logp, torch.zeros_like(logp))
    return {
        "logprob": logp.gather(-1, tokens.long().unsqueeze(-1)).squeeze(-1),
        "predictive_entropy": -plogp.sum(-1),
        "self_certainty": -logp.mean(-1) - math.log(vocab),
    }


def turn_mean(values: Tensor, seg: Tensor) -> Tensor:
    """values [R, S] -> [R] mean over the tokens in seg [R, S] bool (padding selected away; 0 if none)."""
    return torch.where(seg, values, torch.zeros_like(values)).sum(-1) / seg.sum(-1).clamp_min(1)


def intrinsic_components(logits: Tensor, response_ids: Tensor, response_mask: Tensor, token_turn: Tensor,
                         turn_index: Tensor) -> dict[str, Tensor]:
    """Every INTRINSIC signal of every (row, turn): dict of [R, T'] tensors (0 where a row lacks the turn).

    logits [R, S, V] predicting response_ids [R, S]; response_mask [R, S]; token_turn [R, S] episode turn of
    each response token (-1 on padding); turn_index [T'] or [R, T'] the turns of the columns, as
    reward.attention_reward.turn_components returns them.
    """
    per_token = token_signals(logits, response_ids)
    turns = turn_index[0] if turn_index.dim() == 2 else turn_index
    real = response_mask.bool()
    out = {k: logits.new_zeros(logits.shape[0], turns.numel(), dtype=torch.float32) for k in INTRINSIC}
    for k, turn in enumerate(turns.tolist()):
        seg = real & (token_turn == turn)
        for name, values in per_token.items():
            out[name][:, k] = turn_mean(values, seg)
        out["length_tokens"][:, k] = seg.sum(-1).float()
    return out
