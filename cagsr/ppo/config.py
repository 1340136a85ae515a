"""PPO settings and the `cagsr train` job."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from cagsr.attention.config import AttentionConfig
from cagsr.config import check_range
from cagsr.data.config import DataConfig
from cagsr.errors import ConfigError
from cagsr.models.config import ModelConfig
from cagsr.ppo.estimators import estimator
from cagsr.reward.config import RewardConfig
from cagsr.rollout.config import RolloutConfig
from cagsr.salience.config import SalienceConfig
from cagsr.scoring.config import ScoringConfig
from cagsr.utils.run import RunConfig


@dataclass
class PPOConfig:
    iterations: int = field(default=20, metadata={"flag": "--iterations"})
    """PPO iterations: each rolls out a batch of episodes, scores it and updates."""
    epochs: int = 3
    """Passes over each batch (the paper uses three)."""
    minibatch_episodes: int = 2
    """Episodes per gradient step: all turns of an episode are in the same minibatch, so a packed dialogue
    is read once per step."""
    advantage: Literal["return", "gae", "grpo", "dr_grpo", "rloo", "reinforce_pp"] = "return"
    """Per-turn advantage estimator (cagsr.ppo.estimators). With a critic: return (G_t - V(H_t), the paper's) or
    gae (GAE over turns). Critic-free, over groups of rollout.group_size episodes of one record at each turn
    index: grpo ((G_t - group mean) / group std), dr_grpo (G_t - group mean; token sums over a constant), rloo
    (G_t - mean of the group's other episodes); and reinforce_pp (G_t - batch mean, whitened; no groups)."""
    critic: Literal["auto", "separate", "head", "none"] = "auto"
    """separate: a value model of its own (the paper's); head: a value head on the policy; none: no critic (no
    value pass, no value loss), which the critic-free estimators need. auto: separate for return and gae, none
    for the others."""
    gamma: float = 1.0
    """Discount between turns for GAE (the method uses 1.0)."""
    lam: float = 0.95
    """GAE lambda."""
    whiten_advantages: bool | None = None
    """Normalise advantages over the batch's turns (mean 0, std 1). Unset: the estimator's own choice (return and
    gae whiten; grpo, dr_grpo and rloo keep their group scale; reinforce_pp whitens by definition)."""
    clip_eps: float = 0.2
    """PPO ratio clipping epsilon."""
    value_clip: float | None = 0.2
    """Clip value updates to this distance from the old values (None disables)."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    kl_coef: float = 0.05
    """Weight of the KL penalty to the frozen reference policy, per token."""
    kl_estimator: Literal["k1", "k2", "k3"] = "k3"
    """KL estimator used for the penalty."""
    target_kl: float | None = 0.2
    """Stop the epochs of a batch early once the approximate KL to the rollout policy exceeds this."""
    max_bad_batches: int = 3
    """Consecutive batches with NaN/Inf tolerated (skipped) before the run stops."""

    def __post_init__(self) -> None:
        check_range("iterations", self.iterations, low=1)
        check_range("epochs", self.epochs, low=1)
        check_range("minibatch_episodes", self.minibatch_episodes, low=1)
        check_range("clip_eps", self.clip_eps, low=0.0, low_open=True, high=1.0)
        check_range("gamma", self.gamma, low=0.0, high=1.0)
        check_range("lam", self.lam, low=0.0, high=1.0)
        check_range("kl_coef", self.kl_coef, low=0.0)
        check_range("vf_coef", self.vf_coef, low=0.0)
        check_range("target_kl", self.target_kl, low=0.0, low_open=True)
        check_range("value_clip", self.value_clip, low=0.0, low_open=True)
        check_range("max_bad_batches", self.max_bad_batches, low=0)
        resolve_critic(self.advantage, self.critic)  # refuses a critic the estimator cannot use, at load time

    @property
    def critic_kind(self) -> str:
        """The critic this run trains: separate, head or none (auto resolved for the estimator)."""
        return resolve_critic(self.advantage, self.critic)


def resolve_critic(advantage: str, critic: str) -> str:
    """The critic an estimator runs with: auto resolved, and a critic the estimator cannot use refused (a setting
    that did nothing would read as if it mattered)."""
    uses_critic = estimator(advantage).uses_critic
    if critic == "auto":
        return "separate" if uses_critic else "none"
    if uses_critic and critic == "none":
        raise ConfigError(f"ppo.critic: the {advantage} estimator needs a critic (separate or head); "
                          "critic-free estimators: grpo, dr_grpo, rloo, reinforce_pp")
    if not uses_critic and critic != "none":
        raise ConfigError(f"ppo.critic: the {advantage} estimator uses no critic; set ppo.critic none (or auto)")
    return critic


@dataclass
class OptimizerConfig:
    lr: float = 1e-5
    """Policy learning rate (AdamW, no weight decay)."""
    critic_lr: float = 5e-5
    """Critic learning rate (a separate value model or a value head; unused with ppo.critic none)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm of policy and critic together to this, every step."""
    schedule: Literal["constant", "linear", "cosine"] = "constant"
    """Learning-rate schedule over ppo.iterations after the warm-up: constant, or a linear or cosine decay to 0."""
    warmup_iterations: int = 0
    """Iterations of linear warm-up, from lr / (warmup_iterations + 1) up to lr."""

    def __post_init__(self) -> None:
        check_range("optimizer.lr", self.lr, low=0.0, low_open=True)
        check_range("optimizer.critic_lr", self.critic_lr, low=0.0, low_open=True)
        check_range("optimizer.grad_clip", self.grad_clip, low=0.0, low_open=True)
        check_range("optimizer.warmup_iterations", self.warmup_iterations, low=0)


@dataclass
class LoraConfig:
    r: int = 0
    """LoRA rank (peft, on every linear layer); 0 trains all parameters. With LoRA the reference is the base
    model with the adapter off, and the saved model has the adapter merged in."""
    alpha: int = 16
    """LoRA alpha: the adapter's update is scaled by alpha / r."""

    def __post_init__(self) -> None:
        check_range("lora.r", self.r, low=0)
        check_range("lora.alpha", self.alpha, low=1)


@dataclass
class HeldoutConfig:
    every: int = 5
    """Evaluate on held-out records every N iterations (also before the first update, after the first and
    after the last): attention reward, its parts, KL to the reference and quality proxies of a fixed-seed
    rollout, one line per episode in eval_episodes.jsonl."""
    episodes: int = 8
    """Held-out records rolled out per evaluation (the validation split, else the first training records)."""
    samples: int = 2
    """Episodes written to samples.jsonl per iteration, with their per-turn rewards."""
    replies: int = 2
    """Held-out prompts answered greedily before the first update and after the last, side by side in
    table.md and on the terminal (0: none)."""

    def __post_init__(self) -> None:
        check_range("heldout.every", self.every, low=1)
        check_range("heldout.episodes", self.episodes, low=1)
        check_range("heldout.samples", self.samples, low=0)
        check_range("heldout.replies", self.replies, low=0)


@dataclass
class CheckpointConfig:
    every: int = 10
    """Write a checkpoint every N iterations (and at the end; a SIGTERM also writes one)."""
    keep: int = 2
    """How many recent checkpoints to keep."""

    def __post_init__(self) -> None:
        check_range("checkpoints.every", self.every, low=1)
        check_range("checkpoints.keep", self.keep, low=1)


@dataclass
class TrainJob:
    """`cagsr train`: PPO with the history-aware attention reward and per-turn credit."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """Policy to train (usually an SFT run folder or a preset)."""
    data: DataConfig = field(default_factory=DataConfig)
    """Episodes come from these records (validation split for held-out reward)."""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    """Generation, simulator and sampling."""
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    """Attention capture and memory controls."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """The per-turn reward."""
    salience: SalienceConfig = field(default_factory=SalienceConfig)
    """Which history tokens are salient (fitted on the training records)."""
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    """How the teacher-forced passes (score, reference, critic, update) lay out their tokens."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """The PPO algorithm: iterations, epochs, advantage estimator, critic, clipping and KL penalty."""
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    """AdamW learning rates, gradient clipping and the learning-rate schedule."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """Train a LoRA adapter instead of all weights (lora.r > 0)."""
    heldout: HeldoutConfig = field(default_factory=HeldoutConfig)
    """How often and on how many held-out records the run is evaluated, and the samples it writes."""
    checkpoints: CheckpointConfig = field(default_factory=CheckpointConfig)
    """When checkpoints are written and how many are kept (`cagsr train --resume` continues from them)."""
    run: RunConfig = field(default_factory=RunConfig)
    """Output, seed and logging."""

    def __post_init__(self) -> None:
        if estimator(self.ppo.advantage).groups and self.rollout.group_size < 2:
            raise ConfigError(f"rollout.group_size: the {self.ppo.advantage} estimator compares the episodes of a "
                              "group, so it needs groups of at least 2 (e.g. --rollout.group_size 4)")
        # Attention entropy over N history tokens is at most log N, so a floor above that clamps every turn.
        ceiling = math.log(self.rollout.max_context)
        if self.reward.tau0 > ceiling:
            raise ConfigError(f"reward.tau0: entropy floor {self.reward.tau0} is above log(rollout.max_context) = "
                              f"{ceiling:.2f}, the largest attention entropy a history can have")
