"""Copies of a model's Linear weights in oneDNN's blocked layout, for fast no-grad CPU forwards.

("Packed" in this project means sequence packing, several turns in one sequence; these are oneDNN weights.)

    .venv/bin/python -m pytest tests/rollout/test_engines_lean.py -k onednn

On the project's 2-core AMD EPYC, torch's default fp32 matmul (MKL) runs at about 70 GFLOP/s per core
for prefill-sized inputs and 15-20 GFLOP/s for the 8-row inputs of a decode step; oneDNN with
weights reordered once into its blocked layout reaches about 160 and 40 (AVX-512 kernels; MKL takes
a slower path on AMD). Results differ from MKL's only by float rounding (about 1e-5 relative).

`OneDnnLinears(model, modules).active()` swaps the modules' forward for the oneDNN kernel and restores
it on exit. The oneDNN copies are rebuilt whenever a weight changed in place since the reorder (tensor
version counters), so an optimizer step can never leave generation on stale weights.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
from torch import Tensor, nn

BATCH_HINT = 16  # oneDNN picks its weight layout for this many rows; it works for any row count


@functools.cache
def onednn_available(device: torch.device, dtype: torch.dtype) -> bool:
    """oneDNN fp32 linear weight reordering exists on this CPU build (not on CUDA, not for bf16 here)."""
    if device.type != "cpu" or dtype != torch.float32 or not torch.backends.mkldnn.is_available():
        return False
    try:
        w = torch.ones(4, 4)
        reordered = torch.ops.mkldnn._reorder_linear_weight(w, BATCH_HINT)
        out = torch.ops.mkldnn._linear_pointwise(torch.ones(2, 4), reordered, None, "none", [], "")
        return bool(torch.allclose(out, torch.full((2, 4), 4.0)))
    except (RuntimeError, AttributeError):
        return False


def _onednn_forward(weight: Tensor, bias: Tensor | None, x: Tensor) -> Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class OneDnnLinears:
    """oneDNN-layout weights for `modules` (nn.Linear), refreshed when their parameters change."""

    def __init__(self, modules: list[nn.Linear]) -> None:
        self.modules = modules
        self.weights: list[Tensor] = []
        self.versions: list[tuple[int, int]] = []

    def _stamp(self) -> list[tuple[int, int]]:
        return [(id(m.weight), m.weight._version) for m in self.modules]

    @torch.no_grad()
    def refresh(self) -> None:
        """Reorder again if any weight was replaced or changed in place since the last reorder."""
        stamp = self._stamp()
        if stamp == self.versions:
            return
        self.weights = [
            torch.ops.mkldnn._reorder_linear_weight(m.weight.detach(), BATCH_HINT) for m in self.modules
        ]
        self.versions = stamp

    @contextmanager
    def active(self) -> Iterator[None]:
        """Run the modules with the oneDNN kernel (inference only: no gradient reaches the weights)."""
        if torch.is_grad_enabled():
            raise RuntimeError(
                "oneDNN weights are for no-grad forwards only (wrap the call in torch.no_grad())"
            )
        self.refresh()
        try:
            for module, weight in zip(self.modules, self.weights, strict=True):
                bias = None if module.bias is None else module.bias.detach()
                module.forward = lambda x, w=weight, b=bias: _onednn_forward(w, b, x)
            yield
        finally:
            for module in self.modules:
                module.__dict__.pop("forward", None)


def plain_linears(model: nn.Module) -> list[nn.Linear]:
    """Every nn.Linear of the model (layers and LM head), skipping LoRA-wrapped ones: their adapter must
    stay in the computation, so they keep their own forward."""
    return [m for n, m in model.named_modules() if type(m) is nn.Linear and "base_layer" not in n and "lora_" not in n]


# One oneDNN copy of a model's weights, shared by every user of it (each copy is the model's size).
_ONEDNN: weakref.WeakKeyDictionary[nn.Module, OneDnnLinears] = weakref.WeakKeyDictionary()


def onednn_weights(model: nn.Module):
    """Context: the model's plain Linear layers run with (cached, refreshed) oneDNN weights."""
    modules = plain_linears(model)
    copy = _ONEDNN.get(model)
    if copy is None or copy.modules != modules:
        copy = _ONEDNN[model] = OneDnnLinears(modules)
    return copy.active()


def fast_no_grad(model: nn.Module, enabled: bool = True):
    """onednn_weights(model) where oneDNN weight reordering exists (fp32 CPU) and `enabled`, else a no-op context."""
    param = next(model.parameters())
    if not enabled or not onednn_available(param.device, param.dtype):
        return nullcontext()
    return onednn_weights(model)
