"""Log-likelihood helpers over the teacher-forced pass (cagsr.attention.capture.forward_no_capture).

Only the S response rows go through the LM head, so [B, N + S, V] logits are never built
(V is 49,152 for SmolLM2: that tensor alone would be hundreds of MB).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from cagsr.attention.batch import TeacherForcedBatch
from cagsr.attention.forward import forward_no_capture


def response_logits(model, batch: TeacherForcedBatch) -> Tensor:
    """[B, S, V] logits predicting y_1..y_S (decoder-only: rows N-1..N+S-2; seq2seq: decoder rows)."""
    return forward_no_capture(model, batch)[0]


def token_logprobs(logits: Tensor, tokens: Tensor) -> Tensor:
    """logits [B, S, V], tokens [B, S] -> log p(token) [B, S] (float32 for stable PPO ratios)."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def masked_token_nll(logits: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
    """Mean negative log-likelihood over mask [B, S]: the SFT loss."""
    nll = F.cross_entropy(logits.float().flatten(0, 1), tokens.flatten(), reduction="none").view_as(tokens)
    mask = mask.float()
    return (nll * mask).sum() / mask.sum().clamp_min(1.0)


@torch.no_grad()
def batch_nll(model, batch: TeacherForcedBatch) -> float:
    return float(masked_token_nll(response_logits(model, batch), batch.response_ids, batch.response_mask))
