"""The reward stage: every turn's reward, from the scoring pass's components and the other reward parts.

The one place where a reward is computed. Scoring measures the attention components of each turn
(coverage, focus, repetition, ...; attention_reward.py); this stage weighs them into the attention
reward R_t = coverage_weight C_t + focus_weight F_t - repetition_weight P_t, evaluates every other
part (a built-in, a user reward, a reward model) and sums the weighted parts into the [E, T] turn
rewards that the advantages read (turn weights and returns live in ppo/functional.py).

    turn_reward = build_turn_reward(job.reward)                 # resolved and checked once, at start-up
    rewards = turn_reward(episodes, components, job)            # TurnRewards: total, attention, parts

`reward.kind` names one reward; `reward.parts` sums several, each `WEIGHT*NAME` or `NAME` (weight 1),
NAME being `attention`, a signal of the same pass (cagsr.reward.registry.PASS_SIGNALS: self_certainty, ...),
a built-in of cagsr.reward.registry.REWARDS or an import path:

    --reward.parts "attention,0.5*correctness"                 # chain of thought: + answer correctness
    --reward.parts "attention,0.5*self_certainty"              # + the reply's self-certainty (no extra pass)
    --reward.parts "attention,0.2*my_rewards.py:politeness"    # + a user reward from a file

Every part is reported unweighted under its name (reward/attention, reward/correctness,
reward/politeness; eval/... in held-out evaluation); reward/turn_reward is the weighted total and
reward/reward the attention reward.

Shapes: E episodes, T turns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from cagsr.errors import CagsrError, ConfigError
from cagsr.reward import functional as RF
from cagsr.reward.attention_reward import COMPONENTS
from cagsr.reward.config import RewardConfig
from cagsr.reward.head_probe import HEAD_PROBE
from cagsr.reward.registry import ATTENTION, PASS_SIGNALS, TurnRewardFn, get_reward
from cagsr.rollout.episode import Episode

LOGGED = (*COMPONENTS, "reward")
"""What a turn's row reports: the components and the attention reward ('reward')."""
# Names the trainer already logs under reward/: a part with one of them is renamed <name>_part.
TAKEN = {*LOGGED, "turn_reward", "return", "turns_per_episode"}


@dataclass(frozen=True, kw_only=True)
class AttentionWeights:
    """How the attention reward weighs its components: R = coverage C + focus F - repetition P."""

    coverage: float = 1.0
    focus: float = 0.1
    repetition: float = 0.5


def attention_weights(cfg: RewardConfig) -> AttentionWeights:
    """The weights a reward config gives its components."""
    return AttentionWeights(coverage=cfg.coverage_weight, focus=cfg.focus_weight, repetition=cfg.repetition_weight)


def attention_reward(components: dict[str, Tensor], weights: AttentionWeights) -> Tensor:
    """[..., T] attention reward of every turn from its components (0 on padded turns). When the capture
    scored a head probe (reward.kind head_probe), the probe's score is the capture pass's reward instead."""
    if "head_probe" in components:
        reward = components["head_probe"]
    else:
        reward = RF.turn_reward(components["coverage"], components["focus"], components["repetition"],
                                weights.coverage, weights.focus, weights.repetition)
    return torch.where(components["turn_mask"].bool(), reward, torch.zeros_like(reward))


def with_attention_reward(components: dict[str, Tensor], weights: AttentionWeights) -> dict[str, Tensor]:
    """components plus 'reward', the attention reward: what a scored turn reports (LOGGED)."""
    return {**components, "reward": attention_reward(components, weights)}


@dataclass(frozen=True, kw_only=True)
class TurnRewards:
    """What the reward stage gives for a batch of episodes ([E, T] each, 0 on padded turns)."""

    total: Tensor
    """The trained reward: the weighted sum of the parts."""
    attention: Tensor
    """The attention reward (logged as reward/reward whether or not it is a part)."""
    parts: dict[str, Tensor]
    """Each part unweighted by name; empty when the attention reward alone is trained."""

    def logged(self) -> dict[str, Tensor]:
        """'reward' and 'part/<name>' tables, beside the components."""
        return {"reward": self.attention, **{f"part/{name}": v for name, v in self.parts.items()}}


@dataclass(frozen=True)
class RewardPart:
    """One weighted term of the trained reward."""

    name: str
    """Logged as reward/<name> (eval/<name>)."""
    spec: str
    """The reward as configured: attention, a built-in name or an import path."""
    weight: float
    """Its weight in the total."""
    fn: TurnRewardFn | None
    """fn(episodes, job) -> [E, T]; None for the attention reward and the other signals of the capture pass."""
    component: str | None = None
    """With fn None: the capture pass's [E, T] table this part reads (None: the attention reward)."""

    def values(self, episodes: list[Episode], attention: Tensor, job,
               components: dict[str, Tensor] | None = None) -> Tensor:
        """This part's [E, T] values, checked to be a tensor of the episodes' shape."""
        if self.fn is None and self.component is None:
            return attention
        if self.fn is None:
            if components is None or self.component not in components:
                raise CagsrError(f"reward {self.spec}: the scoring pass gave no {self.component!r} table")
            return components[self.component].to(attention.dtype)
        out = self.fn(episodes, job)
        if not isinstance(out, Tensor):
            try:
                out = torch.as_tensor(out, dtype=torch.float32)
            except (TypeError, ValueError, RuntimeError):
                raise ConfigError(f"reward {self.spec}: returned {type(out).__name__}, expected a tensor [E, T]"
                                  ) from None
        n_episodes, n_turns = attention.shape
        if out.dim() != 2 or out.shape[0] != n_episodes or out.shape[1] > n_turns:
            raise ConfigError(f"reward {self.spec}: returned shape {list(out.shape)}, expected [E, T] = "
                              f"[{n_episodes}, {n_turns}] (episodes x turns)")
        padded = torch.zeros_like(attention)
        padded[:, : out.shape[1]] = out.to(attention.dtype)
        return padded


@dataclass(frozen=True, kw_only=True)
class TurnReward:
    """reward.kind / reward.parts resolved once at start-up."""

    parts: tuple[RewardPart, ...]
    """The weighted terms; a lone attention part is the attention reward as before (no extra logs)."""
    weights: AttentionWeights = AttentionWeights()
    """The attention reward's weights of its components."""

    @property
    def attention_only(self) -> bool:
        part = self.parts[0]
        return len(self.parts) == 1 and part.fn is None and part.component is None and part.weight == 1.0

    def __call__(self, episodes: list[Episode], components: dict[str, Tensor], job) -> TurnRewards:
        """components ([E, T] each, with turn_mask) of `episodes` -> their turn rewards."""
        attention = attention_reward(components, self.weights)
        if self.attention_only:
            return TurnRewards(total=attention, attention=attention, parts={})
        mask = components["turn_mask"].bool()
        values = {part.name: torch.where(mask, part.values(episodes, attention, job, components), 0.0)
                  for part in self.parts}
        total = torch.zeros_like(attention)
        for part in self.parts:
            total = total + part.weight * values[part.name]
        return TurnRewards(total=total, attention=attention, parts=values)


def parse_part(text: str) -> tuple[float, str]:
    """'0.5*correctness' -> (0.5, 'correctness'); 'attention' -> (1.0, 'attention').

    >>> parse_part("-0.01 * length"), parse_part("my_rewards.py:politeness")
    ((-0.01, 'length'), (1.0, 'my_rewards.py:politeness'))
    """
    weight, sep, name = text.partition("*")
    if not sep:
        return 1.0, text.strip()
    try:
        value = float(weight)
    except ValueError:
        raise ConfigError(f"reward.parts: {text!r}: expected WEIGHT*NAME with a number as WEIGHT") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"reward.parts: {text!r}: the weight must be finite")
    return value, name.strip()


def _part_name(spec: str, used: set[str]) -> str:
    name = spec.rpartition(":")[2].rpartition(".")[2] if ":" in spec else spec
    if name in TAKEN:
        name = f"{name}_part"
    base, i = name, 2
    while name in used:
        name, i = f"{base}_{i}", i + 1
    used.add(name)
    return name


def build_turn_reward(cfg: RewardConfig) -> TurnReward:
    """Resolve every reward named in cfg (imports and signatures checked here: one-line ConfigError)."""
    if cfg.parts and cfg.kind != ATTENTION:
        raise ConfigError(f"reward.parts: set either reward.kind ({cfg.kind!r}) or reward.parts, not both; "
                          f"put {cfg.kind} into reward.parts")
    setting = "reward.parts" if cfg.parts else "reward.kind"
    entries = [parse_part(p) for p in cfg.parts] if cfg.parts else [(1.0, cfg.kind)]
    used: set[str] = set()
    parts = []
    for weight, spec in entries:
        if not spec:
            raise ConfigError(f"{setting}: an empty reward name")
        if spec == "model" and not cfg.model_path:
            raise ConfigError("reward.model_path: the model reward needs a saved reward model folder")
        if spec == HEAD_PROBE and cfg.parts:
            raise ConfigError("reward.parts: head_probe replaces the attention reward; set reward.kind: head_probe")
        # The attention reward, the head probe and the log-prob signals all come from the capture pass.
        fn = None if spec in (ATTENTION, HEAD_PROBE) or spec in PASS_SIGNALS else get_reward(spec, setting)
        component = spec if spec in PASS_SIGNALS else None
        parts.append(RewardPart(_part_name(spec, used), spec, weight, fn, component))
    return TurnReward(parts=tuple(parts), weights=attention_weights(cfg))
