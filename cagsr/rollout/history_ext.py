"""Append generated tokens to a formatted history, keeping provenance (chain-of-thought steps)."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from cagsr.formatting.history import FormattedHistory


def extend_history(history: FormattedHistory, tokenizer: PreTrainedTokenizerBase, ids: list[int],
                   turn_of: list[int], first_turn: int) -> FormattedHistory:
    """history + ids: the new tokens belong to turn first_turn + turn_of[i] and the agent.

    Offsets come from decoding growing prefixes, so they index the returned text exactly.
    """
    if not ids:
        return history
    text, offsets = history.text, list(history.offsets)
    base, previous = len(text), ""
    for i in range(len(ids)):
        decoded = tokenizer.decode(ids[: i + 1], skip_special_tokens=False)
        offsets.append((base + len(previous), base + len(decoded)))
        previous = decoded
    spans = list(history.turn_spans)
    for step in sorted(set(turn_of)):
        members = [offsets[len(history.offsets) + i] for i, t in enumerate(turn_of) if t == step]
        spans.append((members[0][0], members[-1][1]))
    return FormattedHistory(
        text=text + previous, input_ids=[*history.input_ids, *ids], offsets=offsets,
        token_turn=[*history.token_turn, *(first_turn + t for t in turn_of)],
        token_role=[*history.token_role, *(["agent"] * len(ids))], turn_spans=spans,
        first_kept_turn=history.first_kept_turn,
    )
