"""Which model to load and how."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class ModelConfig:
    name: str = field(default="smollm2-135m", metadata={"flag": "--model"})
    """Preset (smollm2-135m, tiny-llama, tiny-t5), a local model folder, a cagsr run folder, or a hub name."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Parameter dtype. Keep float32 on CPU: bf16 matrix products are hundreds of times slower there."""
    device: str = "auto"
    """cpu, cuda, cuda:N, or auto (the accelerator when there is one, else cpu)."""
