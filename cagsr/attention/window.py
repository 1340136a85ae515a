"""Memory controls for the captured attention: where the reduced rows go, and what is kept.

Shapes: B batch, S response tokens, N history tokens, W window, blk a block of query rows.

The captured attention layers hand over head-summed rows one block of queries at a time
([M, N], transient: M query rows, each tagged with its output row and response step). A reducer
folds each block into what is kept:
  - FullReducer: the full [B, S, N] rows.
  - WindowReducer: the W most recent real history tokens at full resolution plus one summary
    bucket (column 0) holding the mass on all older tokens, so it keeps O(S x (W + 1)) for any N.
Both also keep the raw mass on the (unpadded) history, [B, S], used to renormalise decoder-only rows.
`prune_columns` then drops history columns that are neither salient nor attended to.
"""

from __future__ import annotations

import torch
from torch import Tensor


class FullReducer:
    """Keeps head- and layer-summed attention rows over every history column."""

    def __init__(self, history_mask: Tensor, n_rows: int, dtype: torch.dtype = torch.float32) -> None:
        b, n = history_mask.shape
        self.valid = history_mask.to(dtype)  # [B, N]
        self.sum = history_mask.new_zeros((b, n_rows, n), dtype=dtype)  # [B, S, N]
        self.mass = history_mask.new_zeros((b, n_rows), dtype=dtype)  # [B, S]
        self.kept_index: Tensor | None = None

    def add(self, rows: Tensor, steps: Tensor, probs: Tensor) -> None:
        """probs: [M, N] attention summed over heads of M queries, each feeding (rows[m], steps[m])."""
        # (rows[m], steps[m]) are distinct within a call, so a plain indexed add is exact and deterministic
        # (index_put_ with accumulate=True may add in parallel, in any order).
        probs = probs * self.valid[rows]
        self.sum[rows, steps] += probs
        self.mass[rows, steps] += probs.sum(-1)


def _recent(history_mask: Tensor, window: int) -> tuple[Tensor, Tensor]:
    """[B, N] bool -> (in_window [B, N] bool, slot [B, N] long): is a real token among its row's
    W most recent, and its column in the window (right-aligned: W - 1 is the last real token)."""
    count = history_mask.sum(-1, keepdim=True)  # [B, 1]
    rank = history_mask.long().cumsum(-1) - 1  # [B, N] rank among real tokens
    slot = rank - (count - window)
    return history_mask & (slot >= 0), slot


def window_index(history_mask: Tensor, window: int) -> Tensor:
    """[B, N] bool -> [B, W] long: positions of each row's W most recent real tokens, -1 where fewer."""
    b, n = history_mask.shape
    in_window, slot = _recent(history_mask, window)
    index = torch.full((b, window + 1), -1, dtype=torch.long, device=history_mask.device)
    # Tokens outside the window are scattered into a spare column W that is then cut off.
    dest = torch.where(in_window, slot, torch.full_like(slot, window))
    pos = torch.arange(n, device=history_mask.device).expand(b, n)
    index.scatter_(1, dest, torch.where(in_window, pos, -1))
    return index[:, :window]


class WindowReducer:
    """Keeps [B, S, W + 1]: column 0 sums the mass on older history, columns 1.. the last W tokens."""

    def __init__(
        self, history_mask: Tensor, n_rows: int, window: int, dtype: torch.dtype = torch.float32
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        b, _ = history_mask.shape
        self.valid = history_mask.to(dtype)  # [B, N]
        self.kept_index = window_index(history_mask, window)  # [B, W]
        self.gather_index = self.kept_index.clamp(min=0)
        self.kept_valid = (self.kept_index >= 0).to(dtype)  # [B, W]
        self.older = (history_mask & ~_recent(history_mask, window)[0]).to(dtype)  # [B, N]
        self.sum = history_mask.new_zeros((b, n_rows, window + 1), dtype=dtype)  # [B, S, W+1]
        self.mass = history_mask.new_zeros((b, n_rows), dtype=dtype)  # [B, S]

    def add(self, rows: Tensor, steps: Tensor, probs: Tensor) -> None:
        """probs: [M, N] attention summed over heads of M queries, each feeding (rows[m], steps[m])."""
        recent = probs.gather(1, self.gather_index[rows]) * self.kept_valid[rows]  # [M, W]
        older = (probs * self.older[rows]).sum(-1)  # [M]
        self.sum[rows, steps] += torch.cat([older[:, None], recent], dim=1)  # distinct (row, step) pairs
        self.mass[rows, steps] += older + recent.sum(-1)


def prune_columns(
    abar: Tensor,
    index: Tensor,
    keep: Tensor,
    history_count: Tensor,
    prune_above: int,
    threshold: float = 1e-3,
) -> tuple[Tensor, Tensor]:
    """Drop history columns with negligible attention that are not salient.

    abar: [B, S, C] attention over C candidate columns; index: [B, C] their history positions
    (-1 = no column); keep: [B, C] bool salient; history_count: [B] real history tokens per row.
    A row is pruned only when it has more than `prune_above` history tokens; there a column is
    kept when salient or when its max over s of abar reaches `threshold`. Kept columns are
    packed to the left in history order.
    Returns abar [B, S, C'] and index [B, C'] with C' the largest kept count, padded with 0 / -1.
    Values are not renormalised, so sums over the kept salient columns are unchanged.
    """
    valid = index >= 0
    pruned_row = (history_count > prune_above)[:, None]  # [B, 1]
    attended = abar.amax(dim=1) >= threshold  # [B, C]
    kept = valid & (~pruned_row | keep.bool() | attended)
    width = max(int(kept.sum(-1).max()), 1)
    # A stable sort on "not kept" moves kept columns to the front without reordering them.
    order = torch.sort((~kept).to(torch.int8), dim=-1, stable=True).indices[:, :width]  # [B, C']
    kept_sorted = kept.gather(1, order)
    new_index = torch.where(kept_sorted, index.gather(1, order), -1)
    gathered = abar.gather(2, order[:, None, :].expand(-1, abar.shape[1], -1))
    new_abar = gathered * kept_sorted[:, None, :].to(abar.dtype)
    return new_abar, new_index
