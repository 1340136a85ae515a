"""Which data to read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cagsr.config import check_range
from cagsr.errors import ConfigError


@dataclass
class DataConfig:
    path: str = field(default="generated:dialogue", metadata={"flag": "--data"})
    """A JSON Lines or Parquet file, a dataset saved with save_to_disk, generated:dialogue, generated:math, or
    hf:NAME (a hub dataset or a local folder of data files, e.g. hf:gsm8k). Dialogues may be in the `turns`,
    `messages` (TRL conversational) or prompt/completion shape."""
    kind: Literal["auto", "dialogue", "math"] = "auto"
    """Record format; auto detects it from the first record."""
    limit: int | None = field(default=None, metadata={"flag": "--limit"})
    """Take only the first N records."""
    split: str = "train"
    """Split of a saved DatasetDict or of an hf: dataset (hf:NAME:SPLIT also works)."""
    subset: str | None = None
    """Configuration (subset) name of an hf: dataset, e.g. main for gsm8k."""
    columns: list[str] = field(default_factory=list)
    """Column mapping OURS=THEIRS, e.g. messages=conversation,id=uid: where our fields are in the source."""
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
        self.column_map()

    def column_map(self) -> dict[str, str]:
        """data.columns as {our field: their column}."""
        out = {}
        for pair in self.columns:
            ours, sep, theirs = str(pair).partition("=")
            if not sep or not ours.strip() or not theirs.strip():
                raise ConfigError(f"data.columns: expected OURS=THEIRS, got {pair!r}")
            out[ours.strip()] = theirs.strip()
        return out
