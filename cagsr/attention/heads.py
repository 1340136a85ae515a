"""Per-head attention inside the capture pass: which heads are read, and what is kept of each.

Shapes: M routed query rows of one block, F selected heads, K keys, N history columns, R output rows
(views), S response steps.

The capture (capture.py) computes one block of softmax rows [B, H, blk, K] per captured layer. Besides
the head-averaged abar, it can keep a few numbers per (view, step, head) for chosen heads (`layer.head`
pairs), so memory grows with the selected heads F, never with [L, H, S, N]:

  history_mass  mass on the real history tokens (before any renormalising);
  self_mass     mass on the reply's own earlier tokens (decoder-only; 0 for cross-attention);
  entropy       entropy of the head's history attention, renormalised over the history;
  first_mass    mass on the first real history token (where decoder attention sinks);
  top           history column of the head's strongest key over all keys (-1: not a history token).

From these, `lookback_ratio` gives Lookback Lens' feature (Chuang et al. 2024): the mean attention per
history token against the mean per own earlier token, A_ctx / (A_ctx + A_new); and `top` gives the
retrieval-head score of a copy task (Wu et al. 2024; cagsr.scoring.retrieval).

A head is named `L.H`: L the index of the attention layer (0-based, in model order: decoder
self-attention, or decoder cross-attention for encoder-decoder models), H the query head.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from cagsr.errors import ConfigError

Head = tuple[int, int]
STATS = ("history_mass", "self_mass", "entropy", "first_mass")


def parse_heads(text: str | Sequence[str], key: str = "attention.heads") -> tuple[Head, ...]:
    """'3.1, 29.0' (or ['3.1', '29.0']) -> ((3, 1), (29, 0)); '' -> (). Duplicates are an error.

    >>> parse_heads("3.1, 29.0")
    ((3, 1), (29, 0))
    """
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    out = []
    for item in items:
        layer, dot, head = item.partition(".")
        if not dot or not layer.isdigit() or not head.isdigit():
            raise ConfigError(f"{key}: expected LAYER.HEAD pairs such as 29.3, got {item!r}")
        out.append((int(layer), int(head)))
    if len(set(out)) != len(out):
        raise ConfigError(f"{key}: a head is named twice in {','.join(items)}")
    return tuple(out)


def format_heads(heads: Iterable[Head]) -> str:
    """((3, 1), (29, 0)) -> '3.1,29.0'."""
    return ",".join(f"{layer}.{head}" for layer, head in heads)


def all_heads(layers: int, heads: int) -> tuple[Head, ...]:
    """Every (layer, head) pair in layer-major order."""
    return tuple((layer, head) for layer in range(layers) for head in range(heads))


def check_heads(heads: Iterable[Head], layers: int, n_heads: int | None = None, key: str = "attention.heads") -> None:
    """One-line ConfigError when a head names a layer (or head) the model does not have."""
    for layer, head in heads:
        if layer >= layers or (n_heads is not None and head >= n_heads):
            limit = f"{layers} layers" + (f" of {n_heads} heads" if n_heads is not None else "")
            raise ConfigError(f"{key}: head {layer}.{head} is outside the model ({limit})")


@dataclass(kw_only=True, frozen=True)
class HeadRequest:
    """What the capture reads per head, besides the default abar."""

    abar: tuple[Head, ...] | None = None
    """Heads whose mean is abar (None: every head of the last `last_layers` layers)."""
    features: tuple[Head, ...] = ()
    """Heads whose per-head statistics (STATS and top) come back in CaptureResult.head_stats."""
    extra_abar: dict[str, tuple[Head, ...]] = field(default_factory=dict)
    """Further abar versions from other head sets, same pass: name -> heads."""

    def layers(self) -> set[int]:
        """Every layer index the request reads."""
        heads = [*(self.abar or ()), *self.features, *(h for hs in self.extra_abar.values() for h in hs)]
        return {layer for layer, _ in heads}


@dataclass(kw_only=True)
class HeadStats:
    """Per (view, step, head) statistics of the selected heads (see the module docstring)."""

    heads: tuple[Head, ...]
    """The F heads, in the order of the last axis."""
    history_mass: Tensor
    """[R, S, F] mass on the real history tokens."""
    self_mass: Tensor
    """[R, S, F] mass on the reply's own earlier tokens."""
    entropy: Tensor
    """[R, S, F] entropy of the history attention renormalised over the history (nats)."""
    first_mass: Tensor
    """[R, S, F] mass on the first real history token."""
    top: Tensor
    """[R, S, F] long: history column of the strongest key, -1 when that key is no history token."""
    n_history: Tensor
    """[R] real history tokens of each view."""

    def lookback(self) -> Tensor:
        """[R, S, F] lookback ratio of every step and head."""
        steps = torch.arange(self.history_mass.shape[1], device=self.history_mass.device)
        return lookback_ratio(self.history_mass, self.self_mass, self.n_history, steps)


def lookback_ratio(history_mass: Tensor, self_mass: Tensor, n_history: Tensor, steps: Tensor) -> Tensor:
    """Lookback Lens' ratio A_ctx / (A_ctx + A_new) per step and head.

    history_mass, self_mass: [R, S, F]; n_history: [R] history tokens; steps: [S] own earlier tokens of
    each step (the query predicting y_{s+1} sees y_1..y_s: s of them, 0-based s). A_ctx is the mean
    attention per history token, A_new the mean per own earlier token; a step with no own tokens (the
    first) has ratio 1, and a row with no attention at all 0.
    """
    ctx = history_mass / n_history.clamp_min(1).to(history_mass.dtype)[:, None, None]
    new = self_mass / steps.clamp_min(1).to(self_mass.dtype)[None, :, None]
    return ctx / (ctx + new).clamp_min(torch.finfo(ctx.dtype).tiny)


def block_head_stats(probs: Tensor, columns: Tensor, history: Tensor, first: Tensor, own: Tensor
                     ) -> tuple[dict[str, Tensor], Tensor]:
    """Statistics of F heads for M query rows.

    probs: [M, F, K] softmax rows; columns: [M, N] key behind each history column (-1: none);
    history: [M, N] bool real history columns; first: [M] long first real history column;
    own: [M, K] bool the reply's own earlier tokens among the keys.
    Returns ({history_mass, self_mass, entropy, first_mass: [M, F]}, top [M, F] long).
    """
    m, f, _ = probs.shape
    real = history & (columns >= 0)
    picked = probs.gather(2, columns.clamp(min=0)[:, None, :].expand(m, f, -1)) * real[:, None, :]  # [M, F, N]
    mass = picked.sum(-1)
    safe = mass.clamp_min(torch.finfo(mass.dtype).tiny)
    # H(p / m) = log m - sum(p log p) / m over the history columns.
    entropy = torch.where(mass > 0, safe.log() - torch.xlogy(picked, picked).sum(-1) / safe, torch.zeros_like(mass))
    first_mass = picked.gather(2, first[:, None, None].expand(m, f, 1)).squeeze(-1)
    self_mass = (probs * own[:, None, :]).sum(-1)
    top_key = probs.argmax(-1)  # [M, F]
    hit = (columns[:, None, :] == top_key[..., None]) & real[:, None, :]  # [M, F, N]
    top = torch.where(hit.any(-1), hit.int().argmax(-1), torch.full_like(top_key, -1))
    stats = {"history_mass": mass, "self_mass": self_mass, "entropy": entropy, "first_mass": first_mass}
    return stats, top


class HeadReducer:
    """Keeps HeadStats tensors for F heads and fills them one block of query rows at a time."""

    def __init__(self, heads: tuple[Head, ...], history_mask: Tensor, n_rows: int) -> None:
        r, _ = history_mask.shape
        self.heads = heads
        self.history_mask = history_mask.bool()  # [R, N]
        self.first = self.history_mask.int().argmax(-1)  # [R]
        shape = (r, n_rows, len(heads))
        self.stats = {name: history_mask.new_zeros(shape, dtype=torch.float32) for name in STATS}
        self.top = torch.full(shape, -1, dtype=torch.long, device=history_mask.device)

    def add(self, views: Tensor, steps: Tensor, slots: Tensor, stats: dict[str, Tensor], top: Tensor) -> None:
        """Block results [M, f] of heads at positions `slots` [f] of the F axis, for (views, steps) [M]."""
        index = (views[:, None], steps[:, None], slots[None, :])
        for name, value in stats.items():
            self.stats[name][index] = value
        self.top[index] = top

    def finish(self, response_mask: Tensor) -> HeadStats:
        """Zeroes padded response steps; top is -1 there."""
        valid = response_mask.bool()[..., None]
        stats = {name: value * valid for name, value in self.stats.items()}
        return HeadStats(heads=self.heads, top=torch.where(valid, self.top, -1),
                         n_history=self.history_mask.sum(-1), **stats)
