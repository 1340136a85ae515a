"""Records -> supervised (history, response) pairs: every agent turn of a dialogue, or a math solution.

    pairs = supervised_pairs(records, loaded, max_context=512)
    batch = collate_pairs([p.history.input_ids for p in pairs], [p.response_ids for p in pairs], ...)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from cagsr.data.schema import Dialogue, MathProblem, Record, Utterance
from cagsr.formatting.history import FormattedHistory, format_history, format_response
from cagsr.models.registry import LoadedModel


@dataclass
class Pair:
    """One supervised example: the formatted history and the response the model should produce."""

    history: FormattedHistory
    """The tokenised history with provenance."""
    response_ids: list[int]
    """Target response token ids, ending with the end token."""
    response_text: str
    """The target response as text."""
    record_id: str
    """Which dialogue or problem it came from."""
    turn_index: int
    """Index of the response utterance in the dialogue (0 for math)."""


def record_turns(record: Record) -> list[tuple[list[Utterance], str, int]]:
    """(history utterances, target text, turn index) for each agent turn / the math solution."""
    if isinstance(record, MathProblem):
        return [([Utterance("user", record.question)], record.solution_text(), 0)]
    assert isinstance(record, Dialogue)
    return [(record.turns[:i], record.turns[i].text, i) for i in record.agent_turn_indices()]


def supervised_pairs(records: list[Record], loaded: LoadedModel, max_context: int | None = None) -> list[Pair]:
    """All pairs of all records; histories are truncated from the oldest turn to fit max_context."""
    limit = max_context or loaded.max_context
    pairs = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for record in records:
            for history, target, index in record_turns(record):
                response = format_response(loaded.tokenizer, target, loaded.eos_token_id)
                response = response[: max(8, limit // 2)]
                formatted = format_history(
                    loaded.tokenizer, history, loaded.is_encoder_decoder, max_tokens=limit - len(response)
                )
                pairs.append(Pair(formatted, response, target, record.id, index))
    if caught:
        warnings.warn(f"{len(caught)} histories were longer than {limit} tokens and lost their oldest turns",
                      stacklevel=2)
    return pairs
