"""Labelled and preference data, the records reward models train on, and the preference-file reader.

    pairs = read_preference_file(Path("prefs.jsonl"))   # {"context": ..., "chosen": ..., "rejected": ...}
    text = render_history(utterances, max_turns=4, max_chars=1000)   # 'role: text' lines

Human good/bad labels (Taskmaster-2) are read by cagsr.data.taskmaster into LabelledResponse rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cagsr.data.readers import ROLE_ALIASES, RecordError, decode_json_line, iter_lines
from cagsr.data.schema import Utterance
from cagsr.errors import DataError


@dataclass
class PreferencePair:
    context: str
    """Rendered history (dialogue) or the question (math)."""
    chosen: str
    """The preferred response."""
    rejected: str
    """The response ranked lower."""
    group: str = ""
    """Source record id: held-out splits never share a group with training."""


@dataclass
class LabelledResponse:
    context: str
    """Rendered history before the response."""
    response: str
    """Agent text, or an API call rendered as text."""
    label: float
    """Human reward: 1.0 good, 0.0 bad."""
    group: str = ""
    """Dialogue the row came from, for leak-free splits."""


def render_history(turns: Sequence[Utterance], max_turns: int, max_chars: int) -> str:
    """The last `max_turns` utterances as 'role: text' lines, cut to the last `max_chars` characters.

    The encoder truncates from the end, so the cut keeps the recent history, which decides what fits.
    """
    lines = [f"{u.role}: {u.text}" for u in turns[-max_turns:]] if max_turns > 0 else []
    text = "\n".join(lines)
    return text[-max_chars:] if len(text) > max_chars else text


def _parse_preference(obj: Any, max_turns: int, max_chars: int) -> PreferencePair:
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    for key in ("context", "chosen", "rejected"):
        if key not in obj:
            raise RecordError(f"missing field '{key}'")
    for key in ("chosen", "rejected"):
        if not isinstance(obj[key], str) or not obj[key].strip():
            raise RecordError(f"'{key}' must be non-empty text")
    context = obj["context"]
    if isinstance(context, list):
        turns = []
        for i, turn in enumerate(context, start=1):
            role = ROLE_ALIASES.get(str(turn.get("role", "")).lower()) if isinstance(turn, dict) else None
            if role is None or not isinstance(turn.get("text"), str):
                raise RecordError(f"context turn {i} needs a role (user or agent) and text")
            turns.append(Utterance(role=role, text=turn["text"].strip()))
        context = render_history(turns, max_turns, max_chars)
    elif not isinstance(context, str):
        raise RecordError("'context' must be text or a list of {role, text} turns")
    return PreferencePair(context, obj["chosen"].strip(), obj["rejected"].strip(), str(obj.get("id", "")))


def read_preference_file(
    path: Path, context_turns: int = 4, max_context_chars: int = 1000
) -> list[PreferencePair]:
    """JSON Lines of {"context": text or [{role, text}], "chosen": text, "rejected": text}."""
    out = []
    for lineno, item in iter_lines(path):
        try:
            obj = decode_json_line(item)
            pair = _parse_preference(obj, context_turns, max_context_chars)
        except RecordError as err:
            raise DataError(f"{path}:{lineno}: {err}") from None
        pair.group = pair.group or f"{path.stem}-{lineno}"
        out.append(pair)
    if not out:
        raise DataError(f"{path}: no preference pairs")
    return out
