"""Route a model's attention through a function of ours, and chosen layers through a tap.

Both the capture pass (cagsr.attention.capture) and the lean engine (cagsr.rollout.engines.lean)
register an attention function with transformers' AttentionInterface and need, for one call, every
attention module of the model to use it, with some modules also handing their queries and keys to
a tap. This module is the one place that does it:

    with routed(model, "cagsr_capture", {module: observer}):
        model(**inputs)        # inside the attention function: tap = TAPS.get(module)

The implementation name is set on every config the model's modules read, because
`set_attn_implementation` skips sub-models whose config has the model's own class (T5's encoder and
decoder stacks would keep the old implementation); each config is restored on exit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from torch import nn
from transformers import PreTrainedConfig

TAPS: dict[nn.Module, Callable] = {}
"""Attention module -> its tap, while a `routed` block is active."""


def model_configs(model: nn.Module) -> list[PreTrainedConfig]:
    """Every distinct config the model's modules read (T5 deep-copies one per stack)."""
    seen: dict[int, PreTrainedConfig] = {}
    for module in model.modules():
        cfg = getattr(module, "config", None)
        if isinstance(cfg, PreTrainedConfig):
            seen.setdefault(id(cfg), cfg)
    return list(seen.values())


@contextmanager
def routed(model: nn.Module, implementation: str, taps: dict[nn.Module, Callable] | None = None
           ) -> Iterator[None]:
    """Every attention module of `model` runs `implementation`; `taps` are reachable through TAPS."""
    configs = model_configs(model)
    previous = [cfg._attn_implementation_internal for cfg in configs]
    try:
        for cfg in configs:
            cfg._attn_implementation_internal = implementation
        TAPS.update(taps or {})
        yield
    finally:
        for cfg, impl in zip(configs, previous, strict=True):
            cfg._attn_implementation_internal = impl
        for module in taps or {}:
            TAPS.pop(module, None)


def _is_cross(name: str, module: nn.Module) -> bool:
    leaf = name.rsplit(".", 1)[-1].lower()
    return bool(getattr(module, "is_cross_attention", False)) or any(
        tag in leaf for tag in ("cross", "encdec", "encoder_attn")
    )


def attention_modules(model: nn.Module, cross: bool) -> list[nn.Module]:
    """The innermost attention modules in layer order: cross-attention or (decoder) self-attention."""
    found = []
    for name, module in model.named_modules():
        if not type(module).__name__.endswith("Attention"):
            continue
        if any(type(c).__name__.endswith("Attention") for c in module.children()):
            continue  # a wrapper such as T5LayerSelfAttention; its child does the work
        if _is_cross(name, module) == cross and (cross or ".encoder." not in f".{name}."):
            found.append(module)
    if not found:
        raise ValueError(
            f"no {'cross' if cross else 'self'}-attention modules found in {type(model).__name__}"
        )
    return found
