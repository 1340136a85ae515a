"""The head-probe reward: a linear probe over per-head attention features of each turn (reward.kind head_probe).

    reward:
      kind: head_probe
      head_probe: {heads: "18.6,17.3", features: [lookback], weights: [0.4, -0.1], bias: 0.0,
                   mean: [0.61, 0.55], scale: [0.08, 0.11]}

`cagsr calibrate --mode head_probe` fits it (ridge over standardised features, cagsr.evaluation.analysis.head_probe)
and writes such a preset. The capture pass keeps per-head statistics of the probe's heads only
(cagsr.attention.heads), each turn's feature is the mean over the turn's tokens, and the turn reward is
((x - mean) / scale) . weights + bias. Shapes: R rows, S response tokens, F heads, D = F x features.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from cagsr.attention.heads import Head, HeadStats, parse_heads
from cagsr.errors import ConfigError

HEAD_PROBE = "head_probe"
HEAD_SIGNALS = ("mean_lookback",)
"""Per-head attention read as one number per turn by the capture pass (a reward part, a `cagsr reward` column):
mean_lookback, the lookback ratio (Lookback Lens) averaged over every head of the model."""
FEATURES = ("lookback", "entropy", "first_mass", "history_mass")
"""Per-head features a probe can read: lookback ratio, history entropy, first-token mass, history mass."""


FITTED = {"cli": False}
"""Field metadata of the probe's fitted numbers: set by the preset `cagsr calibrate --mode head_probe` writes
(YAML), not offered as flags (nobody types 810 weights)."""


@dataclass
class HeadProbeConfig:
    heads: str = ""
    """The probe's heads, LAYER.HEAD pairs separated by commas (0-based attention layer, query head)."""
    features: list[str] = field(default_factory=lambda: ["lookback"])
    """Per-head features, each a block of the weight vector in this order: lookback (Lookback Lens' ratio),
    entropy (history attention entropy), first_mass (attention on the first history token), history_mass."""
    weights: list[float] = field(default_factory=list, metadata=FITTED)
    """One weight per (feature, head), feature-major: all heads' first feature, then the second, ..."""
    bias: float = field(default=0.0, metadata=FITTED)
    """Added to every turn's probe score."""
    mean: list[float] = field(default_factory=list, metadata=FITTED)
    """Feature means of the fitting set (standardisation), same order as weights."""
    scale: list[float] = field(default_factory=list, metadata=FITTED)
    """Feature standard deviations of the fitting set, same order as weights."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.features) - set(FEATURES))
        if unknown or not self.features:
            raise ConfigError(f"reward.head_probe.features: expected some of {', '.join(FEATURES)}, got {self.features}")
        heads = parse_heads(self.heads, "reward.head_probe.heads")
        if not self.weights:
            return
        width = len(heads) * len(self.features)
        for name in ("weights", "mean", "scale"):
            if len(getattr(self, name)) != width:
                raise ConfigError(f"reward.head_probe.{name}: {len(getattr(self, name))} values, expected "
                                  f"{width} ({len(heads)} heads x {len(self.features)} features)")
        if any(s <= 0 for s in self.scale):
            raise ConfigError("reward.head_probe.scale: every scale must be > 0")

    @property
    def head_list(self) -> tuple[Head, ...]:
        return parse_heads(self.heads, "reward.head_probe.heads")


def turn_mean_lookback(stats: HeadStats, response_mask: Tensor, token_turn: Tensor, turns: list[int]) -> Tensor:
    """[R, T] lookback ratio of each row's turn `turns[k]`, averaged over its tokens and over every head in
    stats (0 where the row has no token of that turn). response_mask, token_turn: [R, S]."""
    out = response_mask.new_zeros(response_mask.shape[0], len(turns), dtype=stats.history_mass.dtype)
    for k, turn in enumerate(turns):
        seg = response_mask.bool() & (token_turn == turn)
        out[:, k] = turn_head_features(stats, seg, stats.heads, ["lookback"]).mean(-1)
    return out


def probe_of(cfg) -> HeadProbeConfig | None:
    """The fitted probe a reward setting scores turns with, or None: a RewardConfig of kind head_probe, or the
    attention terms of a reward definition that carry one (they have no kind: a probe is there or not)."""
    if getattr(cfg, "kind", HEAD_PROBE) != HEAD_PROBE:
        return None
    return getattr(cfg, "head_probe", None)


def check_probe(cfg: HeadProbeConfig) -> None:
    """One-line error when a head_probe reward has no fitted probe."""
    if not cfg.weights:
        raise ConfigError("reward.head_probe: kind=head_probe needs a fitted probe (write one with "
                          "`cagsr calibrate --mode head_probe`)")


def step_features(stats: HeadStats, kind: str) -> Tensor:
    """[R, S, F] per-step values of one feature."""
    if kind == "lookback":
        return stats.lookback()
    return getattr(stats, kind)


def turn_head_features(stats: HeadStats, seg: Tensor, heads: tuple[Head, ...], kinds: list[str] | tuple[str, ...]
                       ) -> Tensor:
    """[R, len(kinds) * len(heads)] mean of each feature over the tokens in seg [R, S] (0 where none), for
    `heads` picked out of stats.heads, feature-major."""
    missing = [h for h in heads if h not in stats.heads]
    if missing:
        raise ValueError(f"head statistics lack heads {missing[:3]}")
    index = torch.tensor([stats.heads.index(h) for h in heads], device=seg.device)
    weight = seg.to(stats.history_mass.dtype)[..., None]  # [R, S, 1]
    count = weight.sum(1).clamp_min(1)
    return torch.cat([(step_features(stats, k)[..., index] * weight).sum(1) / count for k in kinds], dim=-1)


def probe_score(x: Tensor, cfg: HeadProbeConfig) -> Tensor:
    """[R, D] features -> [R] ((x - mean) / scale) . weights + bias."""
    w, mean, scale = (torch.tensor(v, dtype=x.dtype, device=x.device) for v in (cfg.weights, cfg.mean, cfg.scale))
    return ((x - mean) / scale) @ w + cfg.bias
