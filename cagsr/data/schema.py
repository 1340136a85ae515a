"""Typed records every stage passes around: a Dialogue of Utterances, or a MathProblem."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "agent"]
ANSWER_MARKER = "Answer:"


@dataclass
class Utterance:
    role: Role
    """Who speaks: the user (simulated or recorded) or the agent (the policy)."""
    text: str
    """What was said."""


@dataclass
class Dialogue:
    id: str
    """Stable identifier (file id, or generated)."""
    turns: list[Utterance]
    """Utterances in order; consecutive turns of one speaker are already merged."""
    domain: str = ""
    """Task domain or intent (bank, refund, ...), used by simulators and the consistency classifier."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Anything else the source carried (keywords for salience, task names, ...)."""

    def agent_turn_indices(self) -> list[int]:
        """Indices of agent turns that have at least one utterance before them."""
        return [i for i, u in enumerate(self.turns) if u.role == "agent" and i > 0]


@dataclass
class MathProblem:
    id: str
    """Stable identifier."""
    question: str
    """The word problem."""
    steps: list[str]
    """Reference solution steps, one sentence or line each."""
    answer: str
    """Final answer as a normalised number string."""

    def solution_text(self, marker: str = ANSWER_MARKER) -> str:
        """Steps on their own lines, then the answer after the marker: the CoT target format."""
        return "\n".join([*self.steps, f"{marker} {self.answer}"])


Record = Dialogue | MathProblem
