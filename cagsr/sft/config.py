"""Supervised fine-tuning settings and the `cagsr sft` job."""

from __future__ import annotations

from dataclasses import dataclass, field

from cagsr.config import check_range
from cagsr.data.config import DataConfig
from cagsr.models.config import ModelConfig
from cagsr.utils.run import RunConfig


@dataclass
class SFTConfig:
    max_steps: int = field(default=60, metadata={"flag": "--max-steps"})
    """Optimizer steps to take."""
    batch_size: int = 8
    """(history, response) pairs per step."""
    lr: float = 5e-5
    """Peak learning rate of AdamW."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_steps: int = 5
    """Linear warm-up steps, then cosine decay to 10% of lr."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value."""
    max_context: int = 512
    """Longest history + response in tokens; older turns are dropped first."""
    eval_every: int = 10
    """Compute the validation loss every N steps (and at the end)."""
    eval_pairs: int = 32
    """Validation pairs used for each validation loss."""
    samples: int = 3
    """Validation prompts to generate sample outputs for at the end."""
    patience: int = 0
    """Early stopping: stop once this many validation losses in a row fail to beat the best so far by
    min_delta (the loss has flattened); 0 trains max_steps."""
    min_delta: float = 0.01
    """Relative fall below the best validation loss that counts as an improvement (0.01 = 1%)."""
    keep_best: bool = True
    """Save the weights of the lowest validation loss instead of the last step's (as transformers'
    load_best_model_at_end): a run stopped by patience otherwise keeps the worse weights it stopped on."""

    def __post_init__(self) -> None:
        check_range("max_steps", self.max_steps, low=1)
        check_range("batch_size", self.batch_size, low=1)
        check_range("lr", self.lr, low=0.0, low_open=True)
        check_range("max_context", self.max_context, low=16)
        check_range("eval_every", self.eval_every, low=1)
        check_range("patience", self.patience, low=0)
        check_range("min_delta", self.min_delta, low=0.0)


@dataclass
class SFTJob:
    """`cagsr sft`: fine-tune a model on supervised pairs and save a loadable checkpoint folder."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """Model to fine-tune."""
    data: DataConfig = field(default_factory=DataConfig)
    """Training data (validation is split off it)."""
    sft: SFTConfig = field(default_factory=SFTConfig)
    """Optimisation settings."""
    run: RunConfig = field(default_factory=RunConfig)
    """Output, seed and logging."""
