"""Turn-level rewards besides the attention reward: one table of built-ins, user rewards by import path.

A reward is a plain function `fn(episodes, job) -> Tensor [E, T]` (TRL style): E episodes, T turns,
one value per reward turn (a dialogue reply, a chain-of-thought step), 0 after an episode's last
turn. `job` is the running job (TrainJob in `cagsr train`: `job.reward`, `job.data`, ...). Name it in
`reward.kind` or `reward.parts` as a built-in below or as an import path:

    # my_rewards.py                                   --reward.kind my_rewards.py:politeness
    from cagsr.reward.registry import turn_tensor

    def politeness(episodes, job):
        return turn_tensor(episodes, lambda ep, t: float("please" in ep.turn_texts[t].lower()))

The signature is checked when the run starts (one-line error, exit code 2, nothing written); the
returned tensor's shape when the reward is first called.

Built-ins living above this package (the reward-model reward in cagsr.evaluation) are listed by
import path, so nothing here imports upward.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from cagsr.reward.head_probe import HEAD_SIGNALS
from cagsr.reward.intrinsic import INTRINSIC
from cagsr.rollout.episode import Episode
from cagsr.utils.imports import resolve

TurnRewardFn = Callable[[list[Episode], object], Tensor]

ATTENTION = "attention"
"""The history-aware attention reward, computed from the capture pass itself (not a table entry)."""

PASS_SIGNALS = (*INTRINSIC, *HEAD_SIGNALS)
"""Rewards read from the same capture pass (not table entries): from its logits (reward/intrinsic.py
INTRINSIC) the reply's mean log-prob, mean predictive entropy, self-certainty (mean KL(uniform || p),
Intuitor / RLIF) and its length in tokens; from its per-head attention (reward/head_probe.py HEAD_SIGNALS) the
mean lookback ratio over every head. Like the attention reward they come from the reward.reader's pass."""

REWARDS: dict[str, str] = {
    "model": "cagsr.evaluation.reward_models.model:reward_model_reward",
    "correctness": "cagsr.evaluation.reward_models.task_rewards:answer_correctness",
    "length": "cagsr.reward.builtin:response_words",
    "random": "cagsr.reward.builtin:random_score",
    "quality": "cagsr.evaluation.reward_models.task_rewards:reference_quality",
}
"""Built-in rewards: name -> import path of fn(episodes, job) -> [E, T]."""

SIGNATURE = "fn(episodes: list[Episode], job) -> Tensor [E, T]"


def get_reward(name: str, setting: str = "reward.kind") -> TurnRewardFn:
    """A built-in reward by name or a user reward by import path, its signature checked."""
    return resolve(name, REWARDS, what="reward", setting=setting, call=SIGNATURE, args=2,
                   extra_names=[ATTENTION, *PASS_SIGNALS])


def turn_tensor(episodes: list[Episode], value: Callable[[Episode, int], float]) -> Tensor:
    """[E, T] tensor of value(episode, turn) over real turns, 0 elsewhere.

    >>> from cagsr.rollout.episode import Episode
    >>> eps = [Episode(record=None, kind="dialogue", turn_texts=["hi", "a b"]),
    ...        Episode(record=None, kind="dialogue", turn_texts=["x y z"])]
    >>> turn_tensor(eps, lambda ep, t: len(ep.turn_texts[t].split()))
    tensor([[1., 2.],
            [3., 0.]])
    """
    n_turns = max((ep.num_turns for ep in episodes), default=0)
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
