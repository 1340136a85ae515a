"""Reader for human-labelled reward rows (Taskmaster-4 format), with API calls rendered as text.

    rows = read_taskmaster_rewards(Path("../shared/data/taskmaster4_reward.jsonl"))
    rows[0].context    # 'agent: Welcome to the Coffee Bar ...\\nuser: can i get an espresso please'
    rows[0].response   # '[api] get_menu_items(query=espresso)'
    rows[0].label      # 1.0

A row: {"id", "domain", "context": [{"role": "agent"|"user", "text"} | {"role": "agent", "api": {...}}
| {"role": "api", "response": {...}}], "generation": {"role": "agent", "text" | "api"}, "reward": 0|1}.
Problems raise DataError naming file:line, like the dialogue and math readers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cagsr.data.labelled import LabelledResponse
from cagsr.data.readers import RecordError, decode_json_line, iter_lines
from cagsr.data.schema import Dialogue, Utterance
from cagsr.errors import DataError

MAX_VALUE_CHARS = 60
MAX_LIST_ITEMS = 6
HEX_ID = re.compile(r"[0-9a-f]{16,}")


def _value(value: Any) -> str:
    """Compact text of an argument or result: scalars as is, lists of named items by name."""
    if isinstance(value, dict):
        if "name" in value and isinstance(value["name"], str):
            return value["name"]
        return "{" + ", ".join(f"{k}={_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        shown = ", ".join(_value(v) for v in value[:MAX_LIST_ITEMS])
        more = f", +{len(value) - MAX_LIST_ITEMS} more" if len(value) > MAX_LIST_ITEMS else ""
        return f"[{shown}{more}]"
    text = str(value)
    if HEX_ID.fullmatch(text):
        return "<id>"  # order ids carry no signal and waste the encoder's 128 word pieces
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def render_api_call(call: dict[str, Any]) -> str:
    """{'get_menu_items': {'query': 'espresso'}} -> '[api] get_menu_items(query=espresso)'."""
    parts = []
    for name, args in call.items():
        if isinstance(args, dict):
            parts.append(f"{name}(" + ", ".join(f"{k}={_value(v)}" for k, v in args.items()) + ")")
        else:
            parts.append(f"{name}({_value(args)})")
    return "[api] " + "; ".join(parts)


def render_api_result(response: dict[str, Any]) -> str:
    """{'get_menu_items': {'items': [{'name': 'Espresso'}, ...]}} -> '[api result] get_menu_items: items=[Espresso, ...]'."""
    parts = []
    for name, result in response.items():
        body = (
            ", ".join(f"{k}={_value(v)}" for k, v in result.items())
            if isinstance(result, dict)
            else _value(result)
        )
        parts.append(f"{name}: {body}")
    return "[api result] " + "; ".join(parts)


def render_event(event: Any, where: str) -> str:
    """One context entry or the generation as a 'role: text' line."""
    if not isinstance(event, dict):
        raise RecordError(f"{where} must be an object")
    role = event.get("role")
    if role in ("agent", "user"):
        if isinstance(event.get("text"), str) and event["text"].strip():
            return f"{role}: {event['text'].strip()}"
        if role == "agent" and isinstance(event.get("api"), dict) and event["api"]:
            return f"agent: {render_api_call(event['api'])}"
        raise RecordError(
            f"{where} needs non-empty 'text'" + (" or an 'api' call" if role == "agent" else "")
        )
    if role == "api":
        if isinstance(event.get("response"), dict):
            return render_api_result(event["response"])
        raise RecordError(f"{where} (role api) needs a 'response' object")
    raise RecordError(f"{where} has role {role!r} (expected agent, user or api)")


def parse_taskmaster_row(obj: Any, context_turns: int, max_chars: int) -> LabelledResponse:
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    for key in ("context", "generation", "reward"):
        if key not in obj:
            raise RecordError(f"missing field '{key}'")
    if not isinstance(obj["context"], list):
        raise RecordError("'context' must be a list (it may be empty)")
    reward = obj["reward"]
    if isinstance(reward, bool) or not isinstance(reward, int | float) or reward not in (0, 1):
        raise RecordError(f"'reward' must be 0 or 1, got {reward!r}")
    lines = [render_event(e, f"context entry {i}") for i, e in enumerate(obj["context"], start=1)]
    generation = obj["generation"]
    if not isinstance(generation, dict) or generation.get("role") != "agent":
        raise RecordError("'generation' must be an agent turn")
    response = render_event(generation, "generation").removeprefix("agent: ")
    context = "\n".join(lines[-context_turns:])
    # Rows are prefixes of recorded dialogues: the opening entries identify the dialogue.
    group = json.dumps(obj["context"][:2], sort_keys=True) if obj["context"] else str(obj.get("id", ""))
    return LabelledResponse(context[-max_chars:], response, float(reward), group)


def read_taskmaster_rewards(
    path: Path, context_turns: int = 4, max_context_chars: int = 1000, limit: int | None = None
) -> list[LabelledResponse]:
    """Every row of a Taskmaster-4-style reward file; the first bad row raises DataError (file:line)."""
    out: list[LabelledResponse] = []
    for lineno, item in iter_lines(path):
        if limit is not None and len(out) >= limit:
            break
        try:
            obj = decode_json_line(item)
            out.append(parse_taskmaster_row(obj, context_turns, max_context_chars))
        except RecordError as err:
            raise DataError(f"{path}:{lineno}: {err}") from None
    if not out:
        raise DataError(f"{path}: no rows")
    return out


@dataclass
class LabelledReply:
    """A labelled agent reply as the last agent turn of its context: what the attention reward scores."""

    dialogue: Dialogue
    """The context turns followed by the reply (API calls and results rendered as text)."""
    label: float
    """Human reward: 1.0 good, 0.0 bad."""
    group: str
    """Dialogue the row came from, for leak-free splits and the cluster bootstrap."""

    @property
    def turn(self) -> int:
        """Agent turns before the reply: its turn index t in the entropy floor tau0 + kappa t."""
        return sum(u.role == "agent" for u in self.dialogue.turns[:-1])


def context_utterances(context: list[Any]) -> list[Utterance]:
    """Context entries as utterances; an API result is what the agent is told, so it joins the user side.
    Consecutive entries of one side are merged with a newline, as the dialogue reader does."""
    out: list[Utterance] = []
    for i, event in enumerate(context, start=1):
        line = render_event(event, f"context entry {i}")
        role, _, text = line.partition(": ") if event["role"] != "api" else ("user", "", line)
        if out and out[-1].role == role:
            out[-1] = Utterance(role, f"{out[-1].text}\n{text}")
        else:
            out.append(Utterance(role, text))
    return out


def parse_labelled_reply(obj: Any, number: int) -> LabelledReply | None:
    """One Taskmaster-4 row as a reply (None for an API-call generation or an empty context); RecordError on a
    bad row. number: its line, for the id when the row has none."""
    row = parse_taskmaster_row(obj, 1, 10)  # validates the whole row
    generation = obj["generation"]
    if not isinstance(generation.get("text"), str) or not obj["context"]:
        return None
    turns = [*context_utterances(obj["context"]), Utterance("agent", row.response)]
    rid = str(obj.get("id", f"line{number}"))
    return LabelledReply(Dialogue(f"{rid}:{number}", turns, str(obj.get("domain", ""))), row.label, row.group)


def read_labelled_replies(path: Path, limit: int | None = None) -> tuple[list[LabelledReply], int]:
    """The rows whose generation is agent text (API-call generations are skipped and counted) with a
    non-empty context: (replies, skipped). The first bad row raises DataError (file:line)."""
    out: list[LabelledReply] = []
    skipped = 0
    for lineno, item in iter_lines(path):
        if limit is not None and len(out) >= limit:
            break
        try:
            reply = parse_labelled_reply(decode_json_line(item), lineno)
        except RecordError as err:
            raise DataError(f"{path}:{lineno}: {err}") from None
        if reply is None:
            skipped += 1
            continue
        out.append(reply)
    if not out:
        raise DataError(f"{path}: no labelled text replies")
    return out, skipped


def sample_per_label(replies: list[LabelledReply], max_per_label: int, seed: int) -> list[LabelledReply]:
    """At most max_per_label replies of each label, a seeded sample, in file order."""
    import random

    rng = random.Random(seed)
    keep: set[int] = set()
    for label in sorted({r.label for r in replies}):
        index = [i for i, r in enumerate(replies) if r.label == label]
        keep.update(rng.sample(index, min(max_per_label, len(index))))
    return [r for i, r in enumerate(replies) if i in keep]
