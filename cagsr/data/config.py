"""Which data to read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cagsr.config import check_range


@dataclass
class DataConfig:
    path: str = field(default="generated:dialogue", metadata={"flag": "--data"})
    """A JSON Lines file (dialogue or math format), generated:dialogue, generated:math, or hf:NAME (e.g. hf:gsm8k)."""
    kind: Literal["auto", "dialogue", "math"] = "auto"
    """Record format; auto detects it from the first record."""
    limit: int | None = field(default=None, metadata={"flag": "--limit"})
    """Take only the first N records."""
    num_generated: int = 240
    """How many records a generated: source makes."""
    seed: int = 0
    """Seed of generated data and of the train/validation split."""
    val_fraction: float = 0.1
    """Share of records held out for validation (at least one record when there are two or more)."""

    def __post_init__(self) -> None:
        check_range("data.limit", self.limit, low=1)
        check_range("data.num_generated", self.num_generated, low=1)
        check_range("data.val_fraction", self.val_fraction, low=0.0, high=0.9)
