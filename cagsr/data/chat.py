"""Dialogues in the shapes users have them: the project's `turns`, TRL's conversational `messages`, and
prompt/completion chat pairs. Every shape becomes one list of merged Utterances; a leading system
message becomes the system prompt (Utterance role 'system'), never an agent turn.

    {"turns": [{"role": "user", "text": "..."}, {"role": "agent", "text": "..."}]}
    {"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}, ...]}
    {"prompt": [{"role": "user", "content": "..."}], "completion": [{"role": "assistant", "content": "..."}]}
    {"prompt": "...", "completion": "..."}          # plain-text pair: one user turn, one agent turn
"""

from __future__ import annotations

from typing import Any

from cagsr.data.schema import Dialogue, Utterance

ROLE_ALIASES = {"user": "user", "human": "user", "customer": "user", "agent": "agent", "assistant": "agent",
                "system": "system"}
DIALOGUE_KEYS = "'turns', 'messages', or 'prompt' and 'completion'"


class RecordError(ValueError):
    """A problem with one record; the reader adds file and line."""


def clean_text(value: Any, what: str) -> str:
    """Stripped, non-empty text that UTF-8 can encode (JSON escapes can smuggle in lone surrogates,
    which the tokenizer would reject much later with a traceback)."""
    if not isinstance(value, str):
        raise RecordError(f"{what} must be text, got {type(value).__name__}")
    if not value.strip():
        raise RecordError(f"{what} is empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise RecordError(f"{what} has an unpaired surrogate (\\u{ord(value[err.start]):04x}) at character "
                          f"{err.start + 1}") from None
    return value.strip()


def content_text(value: Any, what: str) -> str:
    """A message's content: text, or a list of parts of which the {'type': 'text'} ones are kept."""
    if isinstance(value, list):
        parts = [p.get("text") for p in value if isinstance(p, dict) and p.get("type", "text") == "text"]
        if not parts or not all(isinstance(p, str) for p in parts):
            raise RecordError(f"{what} has no text parts")
        value = "\n".join(parts)
    return clean_text(value, what)


def merge_turns(items: Any, key: str, label: str, text_key: str, merged: list[Utterance] | None = None
                ) -> list[Utterance]:
    """Validate `items` (role + text_key objects) and append them to `merged`, joining consecutive
    utterances of one speaker; a system message is accepted only before the conversation starts."""
    merged = [] if merged is None else merged
    if not isinstance(items, list):
        raise RecordError(f"'{key}' must be a list, got {type(items).__name__}")
    for i, turn in enumerate(items, start=1):
        where = f"{label} {i}"
        if not isinstance(turn, dict):
            raise RecordError(f"{where} must be an object")
        role = ROLE_ALIASES.get(str(turn.get("role", "")).lower())
        if role is None:
            raise RecordError(f"{where} has role {turn.get('role')!r} (expected user, agent, assistant or system)")
        if text_key not in turn:
            raise RecordError(f"{where} has no {text_key}")
        text = content_text(turn[text_key], f"{where} {text_key}")
        if role == "system" and any(u.role != "system" for u in merged):
            raise RecordError(f"{where} is a system message after the conversation started "
                              "(only a leading system prompt is supported)")
        if merged and merged[-1].role == role:
            merged[-1].text += "\n" + text
        else:
            merged.append(Utterance(role=role, text=text))
    return merged


def _pair_part(value: Any, part: str, role: str, merged: list[Utterance]) -> None:
    if isinstance(value, str):
        merge_turns([{"role": role, "content": value}], part, part, "content", merged)
    else:
        merge_turns(value, part, f"{part} message", "content", merged)


def dialogue_turns(obj: dict[str, Any]) -> list[Utterance]:
    """The merged utterances of a dialogue in any supported shape."""
    if "turns" in obj:
        return merge_turns(obj["turns"], "turns", "turn", "text")
    if "messages" in obj:
        return merge_turns(obj["messages"], "messages", "message", "content")
    if "prompt" in obj and "completion" in obj:
        merged: list[Utterance] = []
        _pair_part(obj["prompt"], "prompt", "user", merged)
        _pair_part(obj["completion"], "completion", "assistant", merged)
        return merged
    raise RecordError(f"missing field 'turns' (a dialogue needs {DIALOGUE_KEYS})")


def is_dialogue(obj: dict[str, Any]) -> bool:
    return "turns" in obj or "messages" in obj or ("prompt" in obj and "completion" in obj)


def parse_dialogue(obj: dict[str, Any], default_id: str) -> Dialogue:
    merged = dialogue_turns(obj)
    roles = {u.role for u in merged if u.role != "system"}
    if not roles:
        raise RecordError("dialogue has only a system prompt" if merged else "dialogue has no turns")
    if roles != {"user", "agent"}:
        raise RecordError(f"dialogue is one-sided (only {next(iter(roles))} turns)")
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    return Dialogue(id=str(obj.get("id", default_id)), turns=merged, domain=str(obj.get("domain") or ""), meta=meta)
