"""What a rollout produces: Episodes made of Actions (teacher-forced rows) split into reward turns.

An Action is one generated response together with the exact prompt the policy saw: the unit the
PPO pass re-scores. Each response token carries the reward turn it belongs to (`token_turn`):
a dialogue reply is one turn; a chain-of-thought solution is split into steps, each a turn.

    steps = split_steps(tokenizer, response_ids)   # -> turn index per token
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from transformers import PreTrainedTokenizerBase

from cagsr.data.schema import Dialogue, MathProblem, Utterance
from cagsr.formatting.history import FormattedHistory

ANSWER_PATTERN = re.compile(r"(####|Answer:)", re.IGNORECASE)


@dataclass
class Action:
    """One generated response and the prompt it was generated from."""

    history: FormattedHistory
    """The tokenised prompt with provenance (what the policy conditioned on)."""
    response_ids: list[int]
    """Generated token ids (ending with the end token when finished)."""
    token_turn: list[int]
    """Reward turn of each response token (0-based within the episode)."""
    finished: bool
    """True when the end token was produced."""


@dataclass
class Episode:
    """A whole dialogue or chain-of-thought solution produced by the policy."""

    record: Dialogue | MathProblem
    """The source record (recorded turns, reference answer)."""
    kind: Literal["dialogue", "math"]
    """Dialogue turns or reasoning steps."""
    utterances: list[Utterance] = field(default_factory=list)
    """The conversation as it unfolded (user turns from the simulator, agent turns from the policy)."""
    actions: list[Action] = field(default_factory=list)
    """The rows PPO trains on."""
    turn_texts: list[str] = field(default_factory=list)
    """Text of each reward turn."""
    final_turn: int | None = None
    """Index of the answer turn (chain of thought), which gets reward.final_weight."""
    done: bool = False
    """No further turns will be generated."""

    @property
    def num_turns(self) -> int:
        return len(self.turn_texts)


def split_steps(tokenizer: PreTrainedTokenizerBase, response_ids: list[int], max_steps: int = 12
                ) -> tuple[list[int], list[str], int]:
    """Token ids -> (turn index per token, text per step, index of the answer step).

    A step ends at a token whose text contains a newline; blank lines stay with the step before.
    The step holding an answer marker (#### or Answer:) is the answer; without one, the last step
    is. Steps beyond max_steps are merged into the last one.
    """
    token_turn, texts, current = [], [""], 0
    for token in response_ids:
        piece = tokenizer.decode([token], skip_special_tokens=True)
        token_turn.append(current)
        texts[current] += piece
        if "\n" in piece and texts[current].strip() and current + 1 < max_steps:
            current += 1
            texts.append("")
    if len(texts) > 1 and not texts[-1].strip():  # trailing newline or end token only
        last = len(texts) - 2
        token_turn = [min(t, last) for t in token_turn]
        texts[last] += texts.pop()
    answer = next((i for i, t in enumerate(texts) if ANSWER_PATTERN.search(t)), len(texts) - 1)
    return token_turn, [t.strip() for t in texts], answer
