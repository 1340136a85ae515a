"""User simulators: who speaks the user turns after the first one.

    sim = make_simulator("rules", seed=0)            # or "scripted", or "model" (needs user_model)
    replies = sim.next_user_turns(episodes)          # None ends that episode

The built-ins are the SIMULATORS table (name -> import path). Your own: a class (or any factory) that
accepts some of the keywords in OPTIONS and returns an object with `next_user_turns`, named by import
path in `rollout.simulator`:

    # my_users.py                                   --rollout.simulator my_users.py:EchoUser
    class EchoUser:
        def __init__(self, seed: int = 0):
            self.seed = seed

        def next_user_turns(self, episodes):        # list[Episode] -> list[str | None]
            return [f"You said: {ep.utterances[-1].text}" for ep in episodes]

The factory gets only the OPTIONS keywords it declares (all of them with **kwargs); a required
parameter outside OPTIONS, or a result without next_user_turns, is a one-line error at start-up.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from typing import Protocol

from cagsr.data.schema import Dialogue, Utterance
from cagsr.errors import ConfigError
from cagsr.rollout.episode import Episode
from cagsr.salience.entities import entity_spans
from cagsr.utils.imports import check_signature, resolve


class UserSimulator(Protocol):
    def next_user_turns(self, episodes: list[Episode]) -> list[str | None]:
        """The next user utterance of each episode (None: the user has nothing more to say)."""
        ...


SIMULATORS: dict[str, str] = {
    "scripted": "cagsr.rollout.simulators:ScriptedUser",
    "rules": "cagsr.rollout.simulators:RuleUser",
    "model": "cagsr.rollout.model_user:ModelUser",
}
"""Built-in user simulators: name -> import path of the factory."""

OPTIONS = ("seed", "user_model", "max_new_tokens")
"""Keywords a simulator factory may declare: the run's seed, the user LoadedModel (the reference policy by
default), the most tokens a model user writes."""

SIGNATURE = "Factory(seed=..., user_model=..., ...) -> object with next_user_turns(episodes)"


def _accepted(factory: Callable, kwargs: dict) -> dict:
    """The keywords of kwargs that factory declares (all of them when it takes **kwargs)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return kwargs
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return {k: v for k, v in kwargs.items() if k in names}


def make_simulator(name: str, **kwargs) -> UserSimulator:
    """A simulator by table name or import path; kwargs are OPTIONS (each passed only where declared)."""
    unknown = set(kwargs) - set(OPTIONS)
    if unknown:
        raise TypeError(f"make_simulator: unknown options {sorted(unknown)} (known: {', '.join(OPTIONS)})")
    setting = "rollout.simulator"
    factory = resolve(name, SIMULATORS, what="simulator", setting=setting, call=SIGNATURE, check=False)
    given = _accepted(factory, kwargs)
    check_signature(factory, setting, name, SIGNATURE, kwargs=given)
    simulator = factory(**given)
    if not callable(getattr(simulator, "next_user_turns", None)):
        raise ConfigError(f"{setting}: {name} made a {type(simulator).__name__} without a "
                          "next_user_turns(episodes) method")
    return simulator


def recorded_user_turns(dialogue: Dialogue) -> list[str]:
    return [u.text for u in dialogue.turns if u.role == "user"]


def opening(dialogue: Dialogue) -> list[Utterance]:
    """The turns before the policy's first reply: everything up to and including the first user turn."""
    first_user = next(i for i, u in enumerate(dialogue.turns) if u.role == "user")
    return [Utterance(u.role, u.text) for u in dialogue.turns[: first_user + 1]]


class ScriptedUser:
    """The next recorded user turn of the dialogue, whatever the agent said."""

    def __init__(self, **_):
        pass

    def next_user_turns(self, episodes: list[Episode]) -> list[str | None]:
        out = []
        for ep in episodes:
            spoken = sum(1 for u in ep.utterances if u.role == "user")
            recorded = recorded_user_turns(ep.record)
            out.append(recorded[spoken] if spoken < len(recorded) else None)
        return out


FOLLOW_UPS = {
    "confirm": ["Just to confirm, this is about {detail}, right?", "So {detail} is what you have on file?",
                "Can you repeat what you have for {detail}?"],
    "correct": ["Sorry, I think I said it wrong earlier. Please double-check {detail}.",
                "Wait, is {detail} correct? I want to be sure."],
    "request": ["One more thing about {detail}: can you send me a confirmation?",
                "Could you also note {detail} for next time?", "What happens next with {detail}?"],
    "answer": ["Yes, it's {detail}.", "It's {detail}, as I mentioned.", "Sure: {detail}."],
}


class RuleUser:
    """Follow-ups built from the dialogue's intent and the agent's last reply.

    When the agent asked a question the user answers with a detail given earlier; otherwise the
    user confirms, corrects or makes a new request that refers back to an earlier detail (names,
    numbers, ids found by the rule-based entity detector), so later turns need the history.
    """

    def __init__(self, seed: int = 0, **_):
        self.rng = random.Random(seed)

    def _details(self, ep: Episode) -> list[str]:
        details = []
        for u in ep.utterances:
            if u.role == "user":
                details += [u.text[s:e] for s, e, _ in entity_spans(u.text)]
        details += [str(k) for k in ep.record.meta.get("keywords", [])] if isinstance(ep.record, Dialogue) else []
        return details or [f"my {ep.record.domain or 'request'}"]

    def next_user_turns(self, episodes: list[Episode]) -> list[str | None]:
        out = []
        for ep in episodes:
            last_agent = next((u.text for u in reversed(ep.utterances) if u.role == "agent"), "")
            mode = "answer" if last_agent.rstrip().endswith("?") else self.rng.choice(["confirm", "correct", "request"])
            detail = self.rng.choice(self._details(ep))
            out.append(self.rng.choice(FOLLOW_UPS[mode]).format(detail=detail))
        return out
