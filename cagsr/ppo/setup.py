"""Build what a PPO run needs from its TrainJob: policy, reference, critic, engine, simulator, salience.

Kept apart from the trainer so the training loop reads as a pipeline.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from cagsr.data.schema import Dialogue, MathProblem, Record
from cagsr.models.registry import LoadedModel, load_model
from cagsr.ppo.config import PPOConfig, TrainJob
from cagsr.ppo.critic import make_critic
from cagsr.ppo.update import Learner
from cagsr.rollout.engines.base import make_engine
from cagsr.rollout.simulators import make_simulator
from cagsr.salience.masks import Salience


@dataclass
class Models:
    policy: LoadedModel
    """The policy being trained (PEFT-wrapped with LoRA)."""
    reference: torch.nn.Module | None
    """Frozen copy of the starting policy; None with LoRA (the base model with the adapter off)."""
    learner: Learner
    """Policy, critic and their optimizer/scheduler."""


def corpus_texts(records: list[Record]) -> list[str]:
    texts = []
    for r in records:
        if isinstance(r, Dialogue):
            texts += [u.text for u in r.turns]
        elif isinstance(r, MathProblem):
            texts += [r.question, *r.steps]
    return texts


def lr_factor(cfg: PPOConfig):
    def factor(iteration: int) -> float:
        if iteration < cfg.warmup_iterations:
            return (iteration + 1) / (cfg.warmup_iterations + 1)
        progress = min(1.0, (iteration - cfg.warmup_iterations) / max(1, cfg.iterations - cfg.warmup_iterations))
        if cfg.lr_schedule == "linear":
            return max(0.0, 1.0 - progress)
        if cfg.lr_schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0

    return factor


def _apply_lora(policy: LoadedModel, cfg: PPOConfig) -> None:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules="all-linear", task_type="SEQ_2_SEQ_LM" if policy.is_encoder_decoder
                      else "CAUSAL_LM")
    policy.model = get_peft_model(policy.model, lora)


def build_models(job: TrainJob) -> Models:
    policy = load_model(job.model)
    cfg = job.ppo
    reference = None
    if cfg.lora_r > 0:
        _apply_lora(policy, cfg)
    else:
        reference = copy.deepcopy(policy.model).eval().requires_grad_(False)
    base = policy.model.get_base_model() if cfg.lora_r > 0 else policy.model
    critic = make_critic(cfg.critic, base, policy.device)
    groups = [{"params": [p for p in policy.model.parameters() if p.requires_grad], "lr": cfg.lr},
              {"params": list(critic.parameters()), "lr": cfg.critic_lr}]
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg))
    learner = Learner(policy.model, critic, cfg.critic == "head", optimizer, scheduler)
    return Models(policy, reference, learner)


def reference_loaded(models: Models) -> LoadedModel:
    """The frozen reference as a LoadedModel (for the model user simulator)."""
    if models.reference is None:
        return models.policy
    return LoadedModel(models.reference, models.policy.tokenizer, models.policy.name)


def build_rollout_parts(job: TrainJob, models: Models, train_records: list[Record]):
    engine = make_engine(job.rollout.engine, models.policy)
    simulator = make_simulator(job.rollout.simulator, seed=job.run.seed, user_model=reference_loaded(models))
    salience = Salience.fit(corpus_texts(train_records), job.reward.salience, job.reward.idf_quantile,
                            job.reward.keywords, job.reward.entity_detector)
    return engine, simulator, salience
