"""The reward of one turn: R_t = alpha C_t + beta F_t - gamma P_t (method.md, section 3)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from cagsr.config import check_range
from cagsr.errors import ConfigError


@dataclass
class RewardConfig:
    kind: str = "attention"
    """The trained reward: attention (the history-aware attention reward), a built-in of
    cagsr.reward.registry.REWARDS (model: a trained reward model, the baselines; correctness: the chain of
    thought's final answer; length: words per turn), or a user reward fn(episodes, job) -> [E, T] tensor named
    package.module:function or path/to/file.py:function."""
    parts: list[str] = field(default_factory=list)
    """A combined reward instead of reward.kind: the sum of these, each WEIGHT*NAME or NAME (weight 1), NAME as in
    reward.kind, e.g. "attention,0.5*correctness"; each part is logged under reward/<name>."""
    model_path: str | None = None
    """Saved reward model folder, for kind=model (synthetic-preference or human-label RL)."""
    history: Literal["multi_turn", "single_turn"] = "multi_turn"
    """multi_turn: attention over the whole history; single_turn: over the current prompt x_t only."""
    coverage_scope: Literal["history", "current_turn"] = "history"
    """Where salient tokens count for coverage; current_turn is the 'no history coverage' ablation."""
    alpha: float = 1.0
    """Weight of coverage C_t."""
    beta: float = 0.1
    """Weight of focus F_t (minus the clamped attention entropy)."""
    gamma: float = 0.5
    """Weight of the history repetition penalty P_t."""
    n: int = 3
    """n-gram length of the repetition penalty."""
    tau0: float = 1.0
    """Entropy floor at turn 0; -inf disables clamping (the 'no entropy clamping' ablation)."""
    kappa: float = 0.25
    """Rise of the entropy floor per turn: tau_t = tau0 + kappa t."""
    block_tokens: int = 5
    """Chain of thought: coverage and focus are taken every this many generated tokens (0: per token)."""
    final_weight: float = 2.0
    """Turn weight lambda of the chain-of-thought answer turn (1.0 is the 'uniform weights' ablation)."""
    salience: str = "idf|entities|keywords"
    """Salient-token sources, combined with |: idf, entities, keywords."""
    idf_quantile: float = 0.7
    """Words rarer than this share of the corpus' word occurrences are salient (idf source)."""
    keywords: list[str] = field(default_factory=list)
    """User keywords that are always salient (records' meta keywords are added)."""
    entity_detector: Literal["auto", "rules", "spacy"] = "rules"
    """Entity detector: the rule-based one, spaCy, or auto (spaCy when installed)."""

    def __post_init__(self) -> None:
        check_range("n", self.n, low=1)
        check_range("block_tokens", self.block_tokens, low=0)
        check_range("final_weight", self.final_weight, low=0.0)
        check_range("idf_quantile", self.idf_quantile, low=0.0, high=1.0)
        if math.isinf(self.kappa):
            raise ConfigError(f"kappa: must be finite, got {self.kappa}")
        if self.tau0 == math.inf:
            raise ConfigError("tau0: +inf would clamp every turn; use -inf to disable clamping")
        if self.kind == "model" and not self.model_path:
            raise ConfigError("model_path: kind=model needs a saved reward model folder")
