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


def turn_context(ep: Episode, t: int) -> str:
    """The conversation before turn t as plain text (reward models read text, not tokens)."""
    if ep.kind == "math":
        return "\n".join([ep.record.question, *ep.turn_texts[:t]])
    agent_seen, lines = 0, []
    for u in ep.utterances:
        if u.role == "agent":
            if agent_seen == t:
                break
            agent_seen += 1
        lines.append(f"{u.role}: {u.text}")
    return "\n".join(lines)


@register_reward("model")
def reward_model_reward(episodes: list[Episode], job) -> Tensor:
    """Score each turn with the reward model saved at reward.model_path."""
    from cagsr.evaluation.reward_model import load_reward_model

    model = load_reward_model(job.reward.model_path)
    pairs = [(ep, t) for ep in episodes for t in range(ep.num_turns)]
    scores = model.score([turn_context(ep, t) for ep, t in pairs], [ep.turn_texts[t] for ep, t in pairs])
    lookup = {(id(ep), t): s for (ep, t), s in zip(pairs, scores, strict=True)}
    return turn_tensor(episodes, lambda ep, t: lookup[(id(ep), t)])
