"""The lean engine's static KV cache, and the sessions that carry it from one turn to the next.

    .venv/bin/python -m pytest tests/rollout/test_engines_lean.py -k session

Shapes: L layers, R rows (B prompts x K candidates), Hkv key/value heads, T columns, D head dim.

One buffer kv [L, 2, R, Hkv, T, D] holds every layer's keys and values, allocated once per call;
`valid` [R, T] marks the columns holding real tokens. Each row's columns are in time order, but a row
may have masked gaps (padding): positions are passed explicitly, so a key's column never matters,
only its mask bit. The attention modules call `update` with their new K/V; the engine sets which
rows and columns the next forward writes.

A session remembers, for each candidate row of a finished call, which tokens were fed to the model
and where their K/V lie. When the next prompt of the same episode extends one of them (checked token
by token), only the new tokens are prefilled: a turn costs its new tokens, not its whole history.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import torch
from torch import Tensor


class StaticKV:
    """K/V for all layers in one preallocated buffer; duck-types the `update` of transformers' Cache."""

    def __init__(self, layers: int, rows: int, heads: int, width: int, dim: int, dtype, device) -> None:
        # zeros, not empty: masked columns are multiplied by an exact 0 probability, and 0 * NaN = NaN.
        self.kv = torch.zeros(layers, 2, rows, heads, width, dim, dtype=dtype, device=device)
        self.valid = torch.zeros(rows, width, dtype=torch.bool, device=device)
        self.rows: slice = slice(None)  # rows the next forward writes (prefill: one per prompt)
        self.start = 0  # first column the next forward writes
        self.end = 0  # one past the last column written; attention sees columns [0, end)

    @property
    def width(self) -> int:
        return self.kv.shape[4]

    def update(self, key: Tensor, value: Tensor, layer_idx: int, *args, **kwargs) -> tuple[Tensor, Tensor]:
        """key/value [R', Hkv, Q, D] of the new tokens -> all keys/values so far [R', Hkv, end, D] (views)."""
        k, v = self.kv[layer_idx, 0, self.rows], self.kv[layer_idx, 1, self.rows]
        k[:, :, self.start : self.end] = key
        v[:, :, self.start : self.end] = value
        return k[:, :, : self.end], v[:, :, : self.end]

    def broadcast_prompts(self, k: int, columns: int) -> None:
        """Copy row b*K (prefilled) into rows b*K+1 .. b*K+K-1 for the first `columns` columns."""
        if k == 1:
            return
        n_layers, two, r, h, t, d = self.kv.shape
        kv = self.kv.view(n_layers, two, r // k, k, h, t, d)
        kv[:, :, :, 1:, :, :, :columns] = kv[:, :, :, :1, :, :, :columns]
        valid = self.valid.view(r // k, k, t)
        valid[:, 1:, :columns] = valid[:, :1, :columns]


@dataclass
class CachedRow:
    """Tokens fed to the model for one row, and where their K/V are (kv buffer, row, columns)."""

    tokens: list[int]
    cache: StaticKV
    row: int
    columns: Tensor  # [len(tokens)] long, in time order


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class Sessions:
    """Session key -> the cached rows (one per candidate) of that episode's last call."""

    def __init__(self) -> None:
        self.rows: dict[Hashable, list[CachedRow]] = {}

    def lookup(self, key: Hashable | None, prompt: list[int]) -> tuple[CachedRow | None, int]:
        """The cached row sharing the longest prefix with `prompt`, and how many tokens to reuse.

        At least one prompt token is always left to prefill: its logits give the first new token.
        """
        best, reuse = None, 0
        for row in self.rows.get(key, []) if key is not None else []:
            n = min(common_prefix(row.tokens, prompt), len(prompt) - 1)
            if n > reuse:
                best, reuse = row, n
        return best, reuse

    def store(self, key: Hashable, rows: list[CachedRow]) -> None:
        self.rows[key] = rows

    def drop(self, key: Hashable) -> None:
        self.rows.pop(key, None)

    def clear(self) -> None:
        self.rows.clear()

    def __len__(self) -> int:
        return len(self.rows)


def copy_prefix(dst: StaticKV, dst_row: int, end: int, src: CachedRow, n: int) -> None:
    """Place the first n cached tokens of `src` into columns [end - n, end) of dst row `dst_row`."""
    cols = src.columns[:n].to(src.cache.kv.device)
    dst.kv[:, :, dst_row, :, end - n : end] = (
        src.cache.kv[:, :, src.row].index_select(3, cols).to(dst.kv.device)
    )
    dst.valid[dst_row, end - n : end] = True
