"""Turn-level reward functions as small registered callables (TRL style).

The attention reward is computed from the capture pass itself; any other reward is a function
`(episodes, job) -> [E, T] tensor` registered under a name and chosen with `reward.kind`:

    @register_reward("short")
    def short(episodes, job):
        return turn_tensor(episodes, lambda ep, t: -len(ep.turn_texts[t].split()))

The built-in "model" reward scores each turn with a trained reward model (the synthetic-preference
and human-label baselines).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from cagsr.errors import ConfigError
from cagsr.rollout.episode import Episode

TurnRewardFn = Callable[[list[Episode], object], Tensor]
_REWARDS: dict[str, TurnRewardFn] = {}
_RM_CACHE: dict[str, object] = {}


def register_reward(name: str):
    def wrap(fn: TurnRewardFn) -> TurnRewardFn:
        _REWARDS[name] = fn
        return fn

    return wrap


def get_reward(name: str) -> TurnRewardFn:
    if name not in _REWARDS:
        raise ConfigError(f"reward.kind: unknown reward {name!r} (available: attention, {', '.join(sorted(_REWARDS))})")
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


@register_reward("model")
def reward_model_reward(episodes: list[Episode], job) -> Tensor:
    """Score each dialogue turn with the reward model at reward.model_path; a chain of thought is scored
    as a whole solution (how the model was trained) and the score goes to its answer turn."""
    from cagsr.evaluation.reward_model import RewardModel

    model = _RM_CACHE.get(job.reward.model_path) or RewardModel.load(job.reward.model_path)
    _RM_CACHE[job.reward.model_path] = model
    pairs = [(ep, t) for ep in episodes for t in range(ep.num_turns) if ep.kind == "dialogue" or t == ep.final_turn]
    responses = [ep.turn_texts[t] if ep.kind == "dialogue" else ep.utterances[-1].text for ep, t in pairs]
    scores = model.score([turn_context(ep, t) for ep, t in pairs], responses)
    lookup = {(id(ep), t): s for (ep, t), s in zip(pairs, scores, strict=True)}
    return turn_tensor(episodes, lambda ep, t: lookup.get((id(ep), t), 0.0))
