"""Rated replies from a file, in either format `cagsr validity` reads, JSON Lines or Parquet.

    replies, skipped = read_rated_replies(Path("../shared/data/ratings/fed_turn.jsonl"), aspect="overall")
    replies[0].label      # 2.6: the mean human score of the aspect (continuous)
    replies[0].group      # the context (dialogue) the reply belongs to: the unit the bootstrap resamples

Ratings format (../shared/data/ratings/README.md): {"id", "turns": [{"role", "text"}, ...] whose last turn is
the rated reply, "scores": {aspect: number}, "meta": {"model": the system that wrote the reply, ...}}.
Taskmaster-4 reward format (context, generation, reward 0/1): read by evaluation/taskmaster.py.

Group: meta.context_id when the file has one (USR-PersonaChat: five systems answer each context); else the
dialogue, found by joining rows whose contexts are prefixes of one another (FED rates about three turns of
each conversation, so those replies share most of their context).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cagsr.data.readers import RecordError, decode_json_line, iter_lines, parquet_rows
from cagsr.data.schema import Dialogue, Utterance
from cagsr.data.taskmaster import LabelledReply, parse_labelled_reply
from cagsr.errors import DataError

MIN_SHARED_TURNS = 2
"""Contexts join one dialogue only when the shorter has at least this many turns (a lone "Hi!" is no evidence)."""


def _drop_nulls(value: Any) -> Any:
    """Parquet stores a list of differently shaped objects as one struct type: absent keys come back None."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def iter_objects(path: Path) -> Iterator[tuple[int, Any]]:
    """(line or row number, object) of a JSON Lines or Parquet file; a line that is not JSON raises DataError."""
    if path.suffix == ".parquet":
        for number, row in enumerate(parquet_rows(path), start=1):
            yield number, _drop_nulls(row)
        return
    for lineno, item in iter_lines(path):
        try:
            yield lineno, decode_json_line(item)
        except RecordError as err:
            raise DataError(f"{path}:{lineno}: {err}") from None


def file_format(obj: Any) -> str:
    """'ratings' (turns + scores) or 'taskmaster' (context + generation + reward), from the first row."""
    if isinstance(obj, dict) and "turns" in obj and "scores" in obj:
        return "ratings"
    if isinstance(obj, dict) and {"context", "generation", "reward"} <= set(obj):
        return "taskmaster"
    keys = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
    raise RecordError(f"neither a rated reply (turns, scores) nor a Taskmaster-4 row (context, generation, "
                      f"reward); got {keys}")


def parse_rated_row(obj: Any, aspect: str, number: int) -> tuple[LabelledReply, str]:
    """One ratings-format row -> (reply, system that wrote it); RecordError on a bad row."""
    turns, scores = obj.get("turns"), obj.get("scores")
    if not isinstance(turns, list) or len(turns) < 2:
        raise RecordError("'turns' must list the context and the rated reply (at least two turns)")
    if not isinstance(scores, dict) or aspect not in scores:
        raise RecordError(f"no score for aspect {aspect!r} (has: {', '.join(sorted(scores or {}))})")
    score = scores[aspect]
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise RecordError(f"score {aspect!r} must be a finite number, got {score!r}")
    utterances = []
    for i, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "agent") or not isinstance(
                turn.get("text"), str) or not turn["text"].strip():
            raise RecordError(f"turn {i} needs role user or agent and non-empty text")
        utterances.append(Utterance(turn["role"], turn["text"].strip()))
    if utterances[-1].role != "agent":
        raise RecordError("the last turn (the rated reply) must have role agent")
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    group = f"context:{meta['context_id']}" if "context_id" in meta else ""
    rid = str(obj.get("id", f"row{number}"))
    reply = LabelledReply(Dialogue(rid, utterances, str(obj.get("dataset", ""))), float(score), group)
    return reply, str(meta.get("model", ""))


def dialogue_groups(replies: Sequence[LabelledReply]) -> list[str]:
    """A group per reply: its own when set, else the dialogue (contexts that are prefixes of one another)."""
    contexts = [[(u.role, u.text) for u in r.dialogue.turns[:-1]] for r in replies]
    parent = list(range(len(replies)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(contexts):
        for j in range(i):
            short, long = (a, contexts[j]) if len(a) <= len(contexts[j]) else (contexts[j], a)
            if len(short) >= MIN_SHARED_TURNS and long[: len(short)] == short:
                parent[root(i)] = root(j)
    return [r.group or f"dialogue:{replies[root(i)].dialogue.id}" for i, r in enumerate(replies)]


def read_rated_replies(path: Path, aspect: str = "overall", limit: int | None = None,
                       drop_systems: Sequence[str] = ()) -> tuple[list[LabelledReply], int, str]:
    """(replies, skipped rows, format) of a ratings or Taskmaster-4 file. Taskmaster labels are 0/1 (aspect
    ignored; API-call replies skipped); ratings rows of the drop_systems (meta.model) are skipped."""
    objects = iter_objects(path)
    first = next(objects, None)
    if first is None:
        raise DataError(f"{path}: no rows")
    try:
        kind = file_format(first[1])
    except RecordError as err:
        raise DataError(f"{path}:{first[0]}: {err}") from None
    out: list[LabelledReply] = []
    skipped = 0
    for number, obj in [first, *objects]:
        if limit is not None and len(out) >= limit:
            break
        try:
            if kind == "taskmaster":
                reply = parse_labelled_reply(obj, number)
                system = ""
            else:
                reply, system = parse_rated_row(obj, aspect, number)
        except RecordError as err:
            raise DataError(f"{path}:{number}: {err}") from None
        if reply is None or system in drop_systems:
            skipped += 1
            continue
        out.append(reply)
    if not out:
        raise DataError(f"{path}: no rated replies (skipped {skipped})")
    if kind == "ratings":
        out = [LabelledReply(r.dialogue, r.label, g) for r, g in zip(out, dialogue_groups(out), strict=True)]
    return out, skipped, kind
