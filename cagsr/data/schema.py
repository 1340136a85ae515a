"""Typed records every stage passes around: a Dialogue of Utterances, or a MathProblem."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "agent", "system"]
ANSWER_MARKER = "Answer:"


@dataclass
class Utterance:
    role: Role
    """Who speaks: the user (simulated or recorded) or the agent (the policy); 'system' is the system
    prompt, only ever the first utterance, which no stage treats as a turn."""
    text: str
    """What was said."""


@dataclass
class Dialogue:
    id: str
    """Stable identifier (file id, or generated)."""
    turns: list[Utterance]
    """Utterances in order; consecutive turns of one speaker are already merged. A system prompt, if any,
    is turns[0] with role 'system' (so every history sliced from turns carries it to the model input)."""
    domain: str = ""
    """Task domain or intent (bank, refund, ...), used by simulators and the consistency classifier."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Anything else the source carried (keywords for salience, task names, ...)."""

    @property
    def system_prompt(self) -> str:
        """The system prompt ('' without one)."""
        return self.turns[0].text if self.turns and self.turns[0].role == "system" else ""

    def conversation(self) -> list[Utterance]:
        """The user and agent turns, without the system prompt."""
        return [u for u in self.turns if u.role != "system"]

    def agent_turn_indices(self) -> list[int]:
        """Indices of agent turns with at least one user or agent utterance before them (the system
        prompt alone is no history to answer)."""
        first = 1 if self.system_prompt else 0
        return [i for i, u in enumerate(self.turns) if u.role == "agent" and i > first]


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
