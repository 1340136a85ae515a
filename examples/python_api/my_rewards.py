"""User plugins for the example: a reward and a salience source, named by file path in the job.

A reward is fn(episodes, job) -> Tensor [E, T]: one value per reward turn (a chain-of-thought step here).
A salience source is fn(text) -> list of (start, end) character spans of the history that are salient.
"""

import re

from cagsr.reward.registry import turn_tensor


def shows_work(episodes, job):
    """1 for a reasoning step that writes out an equation ("19 + 6 = 25"), else 0."""
    equation = re.compile(r"\d\s*[-+*/x]\s*\d+\s*=\s*\d")
    return turn_tensor(episodes, lambda ep, t: float(bool(equation.search(ep.turn_texts[t]))))


def numbers(text):
    """Every number of the question is salient: the solution has to use them."""
    return [m.span() for m in re.finditer(r"\d+(?:\.\d+)?", text)]
