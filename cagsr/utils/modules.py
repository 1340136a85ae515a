"""Small helpers about torch modules that several stages need."""

from __future__ import annotations

from torch import nn


def unwrap_peft(model: nn.Module) -> nn.Module:
    """The transformers model under a PEFT wrapper (its LoRA layers stay injected); any other model as is."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model
