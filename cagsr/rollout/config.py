"""How episodes are generated."""

from __future__ import annotations

from dataclasses import dataclass, field

from cagsr.config import check_range
from cagsr.errors import ConfigError
from cagsr.rollout.engines.base import SamplingConfig


@dataclass
class RolloutConfig:
    engine: str = "auto"
    """Generation engine: auto (fastest available), hf, lean, vllm."""
    episodes: int = 4
    """Episodes (dialogues or problems) rolled out per PPO iteration."""
    group_size: int = 1
    """Episodes rolled out independently from each record of a batch (the same opening, different samples), so
    a batch holds rollout.episodes / group_size groups: the baseline of the grpo, dr_grpo and rloo estimators."""
    turns: int = 3
    """Most policy turns per dialogue (the paper trains with T = 3..5)."""
    simulator: str = "scripted"
    """Who speaks user turns after the first: scripted (recorded turns), rules (rule-based follow-ups), model (an
    LM), or your own class named package.module:Class or path/to/file.py:Class (cagsr.rollout.simulators)."""
    max_context: int = 768
    """Longest prompt in tokens; older turns are dropped first."""
    cot_max_new_tokens: int = 96
    """New-token budget of a whole chain-of-thought solution."""
    max_steps: int = 8
    """Most reasoning steps per solution (extra lines merge into the last step)."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """Sampling settings (the paper's: temperature 0.8, top-k 50, top-p 0.95, 64 new tokens); one reply per
    turn."""

    def __post_init__(self) -> None:
        check_range("episodes", self.episodes, low=1)
        check_range("turns", self.turns, low=1)
        check_range("group_size", self.group_size, low=1)
        if self.episodes % self.group_size:
            raise ConfigError(f"rollout.group_size: {self.episodes} episodes do not split into groups of "
                              f"{self.group_size}")
        check_range("max_context", self.max_context, low=32)
        check_range("cot_max_new_tokens", self.cot_max_new_tokens, low=1)
