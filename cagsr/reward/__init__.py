"""History-aware attention reward (method.md section 3): pure tensor functions."""

from cagsr.reward.functional import (
    attention_entropy,
    block_pool,
    coverage,
    entropy_floor,
    floor_fraction,
    focus,
    history_repetition,
    single_turn_history_mask,
    turn_reward,
)

__all__ = [
    "attention_entropy",
    "block_pool",
    "coverage",
    "entropy_floor",
    "floor_fraction",
    "focus",
    "history_repetition",
    "single_turn_history_mask",
    "turn_reward",
]
