"""How the teacher-forced passes lay out their tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cagsr.config import check_range


@dataclass
class ScoringConfig:
    layout: Literal["packed", "turns", "padded"] = "packed"
    """packed: a dialogue (or chain of thought) is one sequence read once, every turn scored over its own
    history inside it; a turn whose prompt is not an exact continuation of the previous turn (history cut to
    fit the context, a chat template that re-renders earlier turns) starts a sequence of its own. turns: one
    sequence per turn, re-reading the whole history each time, without padding. padded: one row per turn, the
    rows of a pass padded to the batch's longest (how seq2seq models are always read: their encoder input changes
    every turn; for decoder-only models it is the layout before packing, kept for comparison)."""
    token_budget: int = 4096
    """Tokens per forward pass of the score, reference and critic passes and the PPO update. Sequences are
    laid end to end without padding up to this budget; a longer sequence gets a pass of its own."""
    onednn_weights: bool = True
    """The no-grad passes (score, reference, critic) run their Linear layers with weights reordered into
    oneDNN's blocked layout (rollout/engines/onednn.py) where that exists (fp32 on CPU): about 2x the matmul
    rate of torch's default kernel on this project's CPU, equal up to float rounding (~1e-5 relative). The
    update needs gradients and always uses the default kernel."""

    def __post_init__(self) -> None:
        check_range("token_budget", self.token_budget, low=16)
