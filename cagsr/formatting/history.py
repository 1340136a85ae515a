"""Dialogue history -> model input, remembering which turn and speaker every token came from.

Decoder-only models use the tokenizer's chat template (agent -> assistant); seq2seq models get a
plain speaker-tagged serialisation ("User: ...\nAgent: ...\nAgent:"). The reward needs the
provenance to find salient words (char offsets) and to weight or restrict turns (token_turn).

A system prompt (a leading Utterance with role 'system') goes into the chat template's system slot, or
first as "System: ..." for seq2seq. Its tokens have role 'system' and turn -1: context the model reads,
never a turn, so no reward, salience, current-turn or loss mask takes them. It is kept when old
turns are dropped to fit the context.

    fh = format_history(tokenizer, dialogue.turns[:3], is_encoder_decoder=False)
    fh.input_ids, fh.offsets, fh.token_turn, fh.token_role
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from cagsr.data.schema import Utterance
from cagsr.errors import DataError

SPEAKER_TAGS = {"user": "User", "agent": "Agent", "system": "System"}
CHAT_ROLES = {"user": "user", "agent": "assistant", "system": "system"}


@dataclass
class FormattedHistory:
    """A tokenised history. Lists have one entry per token (N of them)."""

    text: str
    """The full rendered input string; offsets index into it."""
    input_ids: list[int]
    """Token ids, N of them."""
    offsets: list[tuple[int, int]]
    """Character span of every token in `text` ((0, 0) for special tokens)."""
    token_turn: list[int]
    """Index of the utterance (in the caller's list) each token belongs to; -1 for template and
    system-prompt tokens (neither is a turn)."""
    token_role: list[str]
    """'user', 'agent', 'system' (the system prompt) or 'template' for every token."""
    turn_spans: list[tuple[int, int]]
    """Character span of each kept utterance's content in `text` (first_kept_turn onward)."""
    first_kept_turn: int = 0
    """How many of the oldest utterances were dropped to fit the context (a system prompt is kept and
    not counted: kept turns are the system prompt, if any, then turns[first_kept_turn:])."""


def _render(tokenizer: PreTrainedTokenizerBase, turns: list[Utterance], seq2seq: bool, prompt: bool) -> str:
    if seq2seq:
        lines = [f"{SPEAKER_TAGS[u.role]}: {u.text}" for u in turns]
        return "\n".join([*lines, "Agent:"] if prompt else lines)
    messages = [{"role": CHAT_ROLES[u.role], "content": u.text} for u in turns]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)


def _content_spans(text: str, turns: list[Utterance]) -> list[tuple[int, int]]:
    spans, cursor = [], 0
    for i, utterance in enumerate(turns):
        start = text.find(utterance.text, cursor)
        if start < 0:
            raise DataError(f"turn {i + 1}: its text does not appear verbatim in the chat template output")
        spans.append((start, start + len(utterance.text)))
        cursor = start + len(utterance.text)
    return spans


def _tokenize(tokenizer: PreTrainedTokenizerBase, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def format_history(
    tokenizer: PreTrainedTokenizerBase,
    turns: list[Utterance],
    is_encoder_decoder: bool,
    max_tokens: int | None = None,
    add_generation_prompt: bool = True,
) -> FormattedHistory:
    """Render and tokenise `turns`; if longer than max_tokens, drop the oldest turns (one warning)."""
    if not turns:
        raise DataError("a history needs at least one turn")
    system = turns[:1] if turns[0].role == "system" else []
    first = len(system)
    while True:
        kept = [*system, *turns[first:]]
        text = _render(tokenizer, kept, is_encoder_decoder, add_generation_prompt)
        ids, offsets = _tokenize(tokenizer, text)
        if max_tokens is None or len(ids) <= max_tokens or first >= len(turns) - 1:
            break
        first += 1
    dropped = first - len(system)
    if dropped:
        warnings.warn(f"history of {len(turns)} turns exceeds {max_tokens} tokens: dropped the oldest {dropped}",
                      stacklevel=2)
    if max_tokens is not None and len(ids) > max_tokens:  # a single huge turn: keep its end
        ids, offsets = ids[-max_tokens:], offsets[-max_tokens:]
    spans = _content_spans(text, kept)
    token_turn, token_role = [], []
    index = [*range(len(system)), *range(first, len(turns))]  # kept utterance -> its index in `turns`
    for start, end in offsets:
        owner = next((k for k, (a, b) in enumerate(spans) if start < b and end > a and end > start), None)
        role = "template" if owner is None else kept[owner].role
        token_turn.append(-1 if role in ("template", "system") else index[owner])
        token_role.append(role)
    return FormattedHistory(text, ids, offsets, token_turn, token_role, spans[len(system):], first)


def format_response(tokenizer: PreTrainedTokenizerBase, text: str, eos_token_id: int) -> list[int]:
    """Token ids of an agent response as the model should produce it, ending with the end token."""
    return [*tokenizer(text, add_special_tokens=False)["input_ids"], eos_token_id]
