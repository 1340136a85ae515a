"""Which attention is captured and how much of it is kept."""

from __future__ import annotations

from dataclasses import dataclass

from cagsr.attention.heads import parse_heads
from cagsr.config import check_range


@dataclass
class AttentionConfig:
    last_layers: int = 1
    """L': average the attention of the last L' layers (all heads). The paper uses the final layer."""
    heads: str = ""
    """LAYER.HEAD pairs (0-based, comma-separated) whose mean attention is abar, so coverage and focus read only
    these heads instead of the last_layers; `cagsr heads` writes the top retrieval heads of a copy task here."""
    window: int | None = None
    """Keep the most recent W history tokens at full resolution; older mass goes to one summary bucket."""
    prune_above: int | None = None
    """Once a history exceeds this many tokens, drop non-salient columns with negligible attention."""
    prune_threshold: float = 1e-3
    """A column is negligible when its largest attention over the response is below this."""

    def __post_init__(self) -> None:
        check_range("last_layers", self.last_layers, low=1)
        parse_heads(self.heads)
        check_range("window", self.window, low=1)
        check_range("prune_above", self.prune_above, low=1)
