"""Critics: V(H_t) from a value head on the policy, or from a separate value model (the paper's).

Both read the hidden state at the row that predicts a turn's first token, i.e. the state after
reading the history H_t.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from cagsr.attention.batch import TeacherForcedBatch
from cagsr.attention.forward import forward_no_capture


class ValueHead(nn.Module):
    """hidden [B, S, D] -> values [B, S]."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.proj = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.proj(hidden.float()).squeeze(-1)


def hidden_size(model: nn.Module) -> int:
    config = model.config
    return int(getattr(config, "hidden_size", None) or getattr(config, "d_model", None) or config.n_embd)


class SeparateCritic(nn.Module):
    """A value model of its own: a copy of the (supervised) policy's network plus a value head."""

    def __init__(self, policy_model: nn.Module):
        super().__init__()
        self.backbone = copy.deepcopy(policy_model)
        self.backbone.requires_grad_(True)
        self.head = ValueHead(hidden_size(policy_model))

    def forward(self, batch: TeacherForcedBatch) -> Tensor:
        """batch [B, N] / [B, S] -> values [B, S]."""
        _, hidden = forward_no_capture(self.backbone, batch)
        # A fresh tensor, not a view: FSDP's backward hook on a module's output needs one.
        return self.head(hidden).clone()


def make_critic(kind: str, policy_model: nn.Module, device: torch.device) -> nn.Module:
    critic = SeparateCritic(policy_model) if kind == "separate" else ValueHead(hidden_size(policy_model))
    return critic.to(device)
