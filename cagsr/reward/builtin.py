"""Built-in rewards that need only the episodes (listed in cagsr.reward.registry.REWARDS).

Plain functions `fn(episodes, job) -> Tensor [E, T]`; weight them in `reward.parts`, e.g.
`--reward.parts "attention,-0.01*length"` penalises long replies; `random` is the spurious-reward control.
"""

from __future__ import annotations

import hashlib

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


def seeded_uniform(seed: int, text: str) -> float:
    """A number in [0, 1) fixed by (seed, text): the same reply always gets the same score, whatever the batch.

    >>> seeded_uniform(0, "hello") == seeded_uniform(0, "hello") != seeded_uniform(1, "hello")
    True
    """
    digest = hashlib.blake2b(f"{seed}\x00{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def random_score(episodes: list[Episode], job=None) -> Tensor:
    """A seeded random score of each turn's text in [0, 1) ("random"; seed: job.run.seed): the spurious-reward
    control, a reward that carries no information about the reply's quality."""
    seed = getattr(getattr(job, "run", None), "seed", 0)
    return turn_tensor(episodes, lambda ep, t: seeded_uniform(seed, ep.turn_texts[t]))
