"""Turn-level reward functions as small registered callables (TRL style).

The attention reward is computed from the capture pass itself; any other reward is a function
`(episodes, job) -> [E, T] tensor` registered under a name and chosen with `reward.kind`:

    @register_reward("short")
    def short(episodes, job):
        return turn_tensor(episodes, lambda ep, t: -len(ep.turn_texts[t].split()))

The built-in "model" reward (cagsr.evaluation.reward_model) scores each turn with a trained reward
model (the synthetic-preference and human-label baselines).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch
from torch import Tensor

from cagsr.errors import ConfigError
from cagsr.rollout.episode import Episode

TurnRewardFn = Callable[[list[Episode], object], Tensor]
_REWARDS: dict[str, TurnRewardFn] = {}
# Built-in rewards that live above this package, reached by import path so nothing here imports upward.
BUILTIN_REWARDS = {"model": "cagsr.evaluation.reward_model:reward_model_reward"}


def register_reward(name: str):
    def wrap(fn: TurnRewardFn) -> TurnRewardFn:
        _REWARDS[name] = fn
        return fn

    return wrap


def get_reward(name: str) -> TurnRewardFn:
    if name in BUILTIN_REWARDS:
        module, _, attr = BUILTIN_REWARDS[name].partition(":")
        return getattr(importlib.import_module(module), attr)
    if name not in _REWARDS:
        known = ", ".join(sorted({"attention", *BUILTIN_REWARDS, *_REWARDS}))
        raise ConfigError(f"reward.kind: unknown reward {name!r} (available: {known})")
    return _REWARDS[name]


def turn_tensor(episodes: list[Episode], value: Callable[[Episode, int], float]) -> Tensor:
    """[E, T] tensor of value(episode, turn) over real turns, 0 elsewhere."""
    n_turns = max(ep.num_turns for ep in episodes)
    out = torch.zeros(len(episodes), n_turns)
    for e, ep in enumerate(episodes):
        for t in range(ep.num_turns):
            out[e, t] = float(value(ep, t))
    return out


def turn_context(ep: Episode, t: int):
    """What a reward model reads before turn t: the utterances so far (dialogue) or the question (math)."""
    if ep.kind == "math":
        return ep.record.question
    agent_seen = 0
    for i, u in enumerate(ep.utterances):
        if u.role == "agent":
            if agent_seen == t:
                return ep.utterances[:i]
            agent_seen += 1
    return ep.utterances
