"""Task rewards built on the evaluation metrics, reached from cagsr.reward.registry.REWARDS by import path.

    --reward.parts "attention,1.0*correctness"      # chain of thought: attention reward + answer correctness
"""

from __future__ import annotations

from torch import Tensor

from cagsr.errors import ConfigError
from cagsr.evaluation.metrics.scores import answer_correct
from cagsr.reward.registry import turn_tensor
from cagsr.rollout.episode import Episode


def answer_correctness(episodes: list[Episode], job=None) -> Tensor:
    """1 on a chain of thought's answer turn when its final answer equals the record's, else 0 ("correctness").

    The whole solution is read, as `cagsr eval` reads it; every other turn gets 0.
    """
    if any(ep.kind != "math" for ep in episodes):
        raise ConfigError("reward correctness: needs math problems (a chain of thought with a reference answer)")

    def value(ep: Episode, t: int) -> float:
        return float(t == ep.final_turn and answer_correct(ep.utterances[-1].text, ep.record.answer))

    return turn_tensor(episodes, value)
