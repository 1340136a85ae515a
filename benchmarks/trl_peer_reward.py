"""The TRL peer's cheap reward for cagsr's GRPO row: the same length reward as TRL's GRPO row gets
(benchmarks/trl_peer_worker.py), as a cagsr reward `fn(episodes, job) -> [E, T]`."""

from __future__ import annotations

from torch import Tensor

from cagsr.reward.registry import turn_tensor


def length_chars(episodes, job=None) -> Tensor:
    """Characters of each turn's reply over 200, capped at 1: longer answers score higher, no model pass."""
    return turn_tensor(episodes, lambda ep, t: min(len(ep.turn_texts[t]), 200) / 200)
