"""User simulators: who speaks the user turns after the first one.

    sim = make_simulator("rules", seed=0)            # or "scripted", or "model" (needs a LoadedModel)
    replies = sim.next_user_turns(episodes)          # None ends that episode

Implement `UserSimulator` (one method) and register it with `@register_simulator("name")` to add
your own.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol

from cagsr.data.schema import Dialogue, Utterance
from cagsr.errors import ConfigError
from cagsr.rollout.episode import Episode
from cagsr.salience.entities import entity_spans


class UserSimulator(Protocol):
    def next_user_turns(self, episodes: list[Episode]) -> list[str | None]:
        """The next user utterance of each episode (None: the user has nothing more to say)."""
        ...


_SIMULATORS: dict[str, Callable[..., UserSimulator]] = {}


def register_simulator(name: str):
    def wrap(factory):
        _SIMULATORS[name] = factory
        return factory

    return wrap


def make_simulator(name: str, **kwargs) -> UserSimulator:
    import cagsr.rollout.model_user  # noqa: F401 - registers "model" (it imports this module)

    if name not in _SIMULATORS:
        raise ConfigError(f"rollout.simulator: unknown simulator {name!r} (available: {', '.join(_SIMULATORS)})")
    return _SIMULATORS[name](**kwargs)


def recorded_user_turns(dialogue: Dialogue) -> list[str]:
    return [u.text for u in dialogue.turns if u.role == "user"]


def opening(dialogue: Dialogue) -> list[Utterance]:
    """The turns before the policy's first reply: everything up to and including the first user turn."""
    first_user = next(i for i, u in enumerate(dialogue.turns) if u.role == "user")
    return [Utterance(u.role, u.text) for u in dialogue.turns[: first_user + 1]]


@register_simulator("scripted")
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


@register_simulator("rules")
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
