"""Built-in rewards that need only the episodes (listed in cagsr.reward.registry.REWARDS).

Plain functions `fn(episodes, job) -> Tensor [E, T]`; weight them in `reward.parts`, e.g.
`--reward.parts "attention,-0.01*length"` penalises long replies.
"""

from __future__ import annotations

from torch import Tensor

from cagsr.reward.registry import turn_tensor
from cagsr.rollout.episode import Episode


def response_words(episodes: list[Episode], job=None) -> Tensor:
    """Words in each turn's text ("length").

    >>> eps = [Episode(record=None, kind="dialogue", turn_texts=["Sure, booked for 7 pm.", "Bye"])]
    >>> response_words(eps, None)
    tensor([[5., 1.]])
    """
    return turn_tensor(episodes, lambda ep, t: len(ep.turn_texts[t].split()))
