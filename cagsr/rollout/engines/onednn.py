"""oneDNN-packed copies of a model's Linear weights, for fast no-grad CPU forwards.

    .venv/bin/python -m pytest tests/rollout/test_engines_lean.py -k packed

On the project's 2-core AMD EPYC, torch's default fp32 matmul (MKL) runs at about 70 GFLOP/s per core
for prefill-sized inputs and 15-20 GFLOP/s for the 8-row inputs of a decode step; oneDNN with
weights reordered once into its blocked layout reaches about 160 and 40 (AVX-512 kernels; MKL takes
a slower path on AMD). Results differ from MKL's only by float rounding (about 1e-5 relative).

`PackedLinears(model, modules).active()` swaps the modules' forward for the packed kernel and restores
it on exit. The packed copies are rebuilt whenever a weight changed in place since packing (tensor
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
def packing_available(device: torch.device, dtype: torch.dtype) -> bool:
    """oneDNN fp32 linear packing exists on this CPU build (not on CUDA, not for bf16 here)."""
    if device.type != "cpu" or dtype != torch.float32 or not torch.backends.mkldnn.is_available():
        return False
    try:
        w = torch.ones(4, 4)
        packed = torch.ops.mkldnn._reorder_linear_weight(w, BATCH_HINT)
        out = torch.ops.mkldnn._linear_pointwise(torch.ones(2, 4), packed, None, "none", [], "")
        return bool(torch.allclose(out, torch.full((2, 4), 4.0)))
    except (RuntimeError, AttributeError):
        return False


def _packed_forward(packed: Tensor, bias: Tensor | None, x: Tensor) -> Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


class PackedLinears:
    """Packed weights for `modules` (nn.Linear), refreshed when their parameters change."""

    def __init__(self, modules: list[nn.Linear]) -> None:
        self.modules = modules
        self.packed: list[Tensor] = []
        self.versions: list[tuple[int, int]] = []

    def _stamp(self) -> list[tuple[int, int]]:
        return [(id(m.weight), m.weight._version) for m in self.modules]

    @torch.no_grad()
    def refresh(self) -> None:
        """Repack if any weight was replaced or changed in place since the last packing."""
        stamp = self._stamp()
        if stamp == self.versions:
            return
        self.packed = [
            torch.ops.mkldnn._reorder_linear_weight(m.weight.detach(), BATCH_HINT) for m in self.modules
        ]
        self.versions = stamp

    @contextmanager
    def active(self) -> Iterator[None]:
        """Run the modules with the packed kernel (inference only: no gradient reaches the weights)."""
        if torch.is_grad_enabled():
            raise RuntimeError(
                "packed weights are for no-grad forwards only (wrap the call in torch.no_grad())"
            )
        self.refresh()
        try:
            for module, packed in zip(self.modules, self.packed, strict=True):
                bias = None if module.bias is None else module.bias.detach()
                module.forward = lambda x, p=packed, b=bias: _packed_forward(p, b, x)
            yield
        finally:
            for module in self.modules:
                module.__dict__.pop("forward", None)


def plain_linears(model: nn.Module) -> list[nn.Linear]:
    """Every nn.Linear of the model (layers and LM head), skipping LoRA-wrapped ones: their adapter must
    stay in the computation, so they keep their own forward."""
    return [m for n, m in model.named_modules() if type(m) is nn.Linear and "base_layer" not in n and "lora_" not in n]


# One packed copy of a model's weights, shared by every user of it (each copy is the model's size).
_PACKED: weakref.WeakKeyDictionary[nn.Module, PackedLinears] = weakref.WeakKeyDictionary()


def packed_weights(model: nn.Module):
    """Context: the model's plain Linear layers run with (cached, refreshed) packed weights."""
    modules = plain_linears(model)
    packed = _PACKED.get(model)
    if packed is None or packed.modules != modules:
        packed = _PACKED[model] = PackedLinears(modules)
    return packed.active()


def fast_no_grad(model: nn.Module, enabled: bool = True):
    """packed_weights(model) where oneDNN packing exists (fp32 CPU) and `enabled`, else a no-op context."""
    param = next(model.parameters())
    if not enabled or not packing_available(param.device, param.dtype):
        return nullcontext()
    return packed_weights(model)
