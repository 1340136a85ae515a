"""The reward of one turn: R_t = coverage_weight C_t + focus_weight F_t - repetition_weight P_t (method.md,
section 3, where the weights are alpha, beta and gamma)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from cagsr.config import check_range
from cagsr.errors import ConfigError
from cagsr.reward.head_probe import HEAD_PROBE, HeadProbeConfig, check_probe

SINK_KINDS = ("template", "special", "first")
# Per model kind: decoder self-attention sinks on the first token (<|im_start|>); T5 cross-attention has no
# such position, so only the tokens that carry no utterance text are left out there.
AUTO_SINK_TOKENS = {"decoder": "template|special|first", "seq2seq": "template|special"}


@dataclass
class RewardConfig:
    kind: str = "attention"
    """The trained reward: attention (the history-aware attention reward), head_probe (a fitted linear probe
    over per-head attention features, reward.head_probe), a built-in of
    cagsr.reward.registry.REWARDS (model: a trained reward model, the baselines; correctness: the chain of
    thought's final answer; length: words per turn; random: a seeded random score of the text, the
    spurious-reward control; quality: the evaluation's own quality against the recorded data, the positive
    control), a signal of the same capture pass (logprob: the reply's mean token log-prob,
    predictive_entropy, self_certainty: mean KL(uniform || p) over its tokens, length_tokens), or a user reward
    fn(episodes, job) -> [E, T] tensor named package.module:function or path/to/file.py:function."""
    parts: list[str] = field(default_factory=list)
    """A combined reward instead of reward.kind: the sum of these, each WEIGHT*NAME or NAME (weight 1), NAME as in
    reward.kind, e.g. "attention,0.5*correctness"; each part is logged under reward/<name>."""
    reader: Literal["policy", "reference"] = "policy"
    """Whose teacher-forced pass the attention reward and the log-prob signals are read from. policy (the
    paper's definition): the policy's own attention, which it can move to raise the reward. reference: the
    frozen reference model's pass (the one that already runs for the KL penalty, now with attention capture),
    so the policy can raise the reward only by changing its text. No extra forward pass either way."""
    model_path: str | None = None
    """Saved reward model folder, for kind=model (synthetic-preference or human-label RL)."""
    history: Literal["multi_turn", "single_turn"] = "multi_turn"
    """multi_turn: attention over the whole history; single_turn: over the current prompt x_t only."""
    coverage_scope: Literal["history", "current_turn"] = "history"
    """Where salient tokens count for coverage; current_turn is the 'no history coverage' ablation."""
    coverage_weight: float = 1.0
    """Weight of coverage C_t (the method's alpha)."""
    focus_weight: float = 0.1
    """Weight of focus F_t, minus the clamped attention entropy (the method's beta)."""
    repetition_weight: float = 0.5
    """Weight of the history repetition penalty P_t (the method's gamma)."""
    repetition_ngram: int = 3
    """n-gram length of the repetition penalty."""
    tau0: float = 1.0
    """Entropy floor at turn 0; -inf disables clamping (the 'no entropy clamping' ablation)."""
    kappa: float = 0.25
    """Rise of the entropy floor per turn: tau_t = tau0 + kappa t."""
    history_tokens: Literal["all", "content"] = "all"
    """History tokens that coverage and focus read: all (the paper's: every history token) or content (the
    reward.sink_tokens left out, attention renormalised over the rest). all stays the default for both model
    kinds: on held-out human labels content did not tell good replies from bad ones better
    (docs/results/validity-taskmaster.md)."""
    sink_tokens: str = "auto"
    """Which history tokens content mode leaves out, combined with |: template (chat-template and speaker-tag
    tokens), special (the tokenizer's special ids), first (the first history token, where decoder-only
    attention sinks). auto: template|special|first for decoder-only models, template|special for
    encoder-decoder ones."""
    block_tokens: int = 5
    """Chain of thought: coverage and focus are taken every this many generated tokens (0: per token)."""
    final_weight: float = 2.0
    """Turn weight lambda of the chain-of-thought answer turn (1.0 is the 'uniform weights' ablation)."""
    head_probe: HeadProbeConfig = field(default_factory=HeadProbeConfig)
    """For kind=head_probe: the fitted linear probe over per-head attention features (reward/head_probe.py),
    written by `cagsr calibrate --mode head_probe` into a preset; its fitted numbers (weights, bias, mean,
    scale) are set there, in YAML, not by flags."""

    def __post_init__(self) -> None:
        check_range("repetition_ngram", self.repetition_ngram, low=1)
        check_range("block_tokens", self.block_tokens, low=0)
        check_range("final_weight", self.final_weight, low=0.0)
        if math.isinf(self.kappa):
            raise ConfigError(f"kappa: must be finite, got {self.kappa}")
        if self.tau0 == math.inf:
            raise ConfigError("tau0: +inf would clamp every turn; use -inf to disable clamping")
        parse_sinks(self.sink_tokens)
        if self.kind == HEAD_PROBE:
            check_probe(self.head_probe)
        if self.kind == "model" and not self.model_path:
            raise ConfigError("model_path: kind=model needs a saved reward model folder")


def parse_sinks(spec: str) -> frozenset[str]:
    """'template|special' -> {'template', 'special'}; 'auto' -> the empty set (resolved per model kind)."""
    if spec == "auto":
        return frozenset()
    parts = frozenset(p.strip() for p in spec.split("|") if p.strip())
    unknown = sorted(parts - set(SINK_KINDS))
    if unknown or not parts:
        raise ConfigError(f"sink_tokens: expected auto or a |-combination of {', '.join(SINK_KINDS)}, got {spec!r}")
    return parts


def resolve_reward(cfg: RewardConfig, is_encoder_decoder: bool) -> RewardConfig:
    """The config with sink_tokens 'auto' replaced by the model kind's default."""
    if cfg.sink_tokens != "auto":
        return cfg
    return replace(cfg, sink_tokens=AUTO_SINK_TOKENS["seq2seq" if is_encoder_decoder else "decoder"])
