"""Readers for the dialogue and math JSON Lines formats, with errors that name file, line and field.

    records = read_jsonl_records(Path("star.jsonl"), kind="auto")    # raises DataError on the first problem
    report = validate_file(Path("star.jsonl"))                        # collects every problem instead
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cagsr.data.schema import Dialogue, MathProblem, Record, Utterance
from cagsr.errors import DataError

MAX_LINE_CHARS = 1_000_000
ROLE_ALIASES = {"user": "user", "agent": "agent", "assistant": "agent", "system": "agent", "customer": "user"}


class RecordError(ValueError):
    """A problem with one record; the reader adds file and line."""


def normalise_number(text: str) -> str:
    """'1,234.50' -> '1234.5', '$12' -> '12', '7.0' -> '7': how answers are compared."""
    cleaned = re.sub(r"[,$%\s]", "", str(text)).rstrip(".")
    try:
        value = float(cleaned)
    except ValueError:
        return cleaned
    return str(int(value)) if value.is_integer() else repr(value)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise RecordError(f"{what} must be text, got {type(value).__name__}")
    if not value.strip():
        raise RecordError(f"{what} is empty")
    return value.strip()


def parse_dialogue(obj: dict[str, Any], default_id: str) -> Dialogue:
    turns = obj.get("turns")
    if turns is None:
        raise RecordError("missing field 'turns'")
    if not isinstance(turns, list):
        raise RecordError(f"'turns' must be a list, got {type(turns).__name__}")
    merged: list[Utterance] = []
    for i, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            raise RecordError(f"turn {i} must be an object")
        role = ROLE_ALIASES.get(str(turn.get("role", "")).lower())
        if role is None:
            raise RecordError(f"turn {i} has role {turn.get('role')!r} (expected user or agent)")
        if "text" not in turn:
            raise RecordError(f"turn {i} has no text")
        text = _text(turn["text"], f"turn {i} text")
        if merged and merged[-1].role == role:
            merged[-1].text += "\n" + text
        else:
            merged.append(Utterance(role=role, text=text))
    if not merged:
        raise RecordError("dialogue has no turns")
    roles = {u.role for u in merged}
    if roles != {"user", "agent"}:
        raise RecordError(f"dialogue is one-sided (only {next(iter(roles))} turns)")
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    return Dialogue(id=str(obj.get("id", default_id)), turns=merged, domain=str(obj.get("domain", "")), meta=meta)


def parse_math(obj: dict[str, Any], default_id: str) -> MathProblem:
    if "question" not in obj:
        raise RecordError("missing field 'question'")
    question = _text(obj["question"], "'question'")
    steps = obj.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
        raise RecordError("'steps' must be a list of text")
    if "answer" not in obj or obj["answer"] is None or str(obj["answer"]).strip() == "":
        raise RecordError("missing answer")
    if not isinstance(obj["answer"], str | int | float) or isinstance(obj["answer"], bool):
        raise RecordError(f"'answer' must be a number or text, got {type(obj['answer']).__name__}")
    return MathProblem(
        id=str(obj.get("id", default_id)), question=question,
        steps=[s.strip() for s in steps if s.strip()], answer=normalise_number(str(obj["answer"])),
    )


def detect_kind(obj: dict[str, Any]) -> str:
    if "turns" in obj:
        return "dialogue"
    if "question" in obj:
        return "math"
    raise RecordError("neither a dialogue (no 'turns') nor a math problem (no 'question')")


def iter_lines(path: Path) -> Iterator[tuple[int, str | RecordError]]:
    """(line number, text) for every non-blank line; undecodable or huge lines come as errors."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a JSON Lines file") from None
    with handle:
        for lineno, raw in enumerate(handle, start=1):
            if len(raw) > MAX_LINE_CHARS:
                yield lineno, RecordError(f"line is {len(raw):,} bytes long (limit {MAX_LINE_CHARS:,})")
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield lineno, RecordError(f"not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1})")
                continue
            if text.strip():
                yield lineno, text


def decode_json_line(item: str | RecordError) -> Any:
    """A line from iter_lines as a JSON value; unreadable lines and invalid JSON raise RecordError."""
    if isinstance(item, RecordError):
        raise item
    try:
        return json.loads(item)
    except json.JSONDecodeError as err:
        raise RecordError(f"invalid JSON ({err.msg} at column {err.colno})") from None


def parse_line(text: str, kind: str, default_id: str) -> Record:
    obj = decode_json_line(text)
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    kind = detect_kind(obj) if kind == "auto" else kind
    return parse_dialogue(obj, default_id) if kind == "dialogue" else parse_math(obj, default_id)


@dataclass
class FileReport:
    """What `cagsr data` prints: the good records and every problem found."""

    path: Path
    records: list[Record] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def scan(path: Path, kind: str = "auto", limit: int | None = None, strict: bool = True) -> FileReport:
    """Parse a file; strict raises the first problem as DataError, else problems are collected."""
    report = FileReport(path=path)
    for lineno, item in iter_lines(path):
        if limit is not None and len(report.records) >= limit:
            break
        try:
            if isinstance(item, RecordError):
                raise item
            record = parse_line(item, kind, f"{path.stem}-{lineno}")
            kind = "dialogue" if isinstance(record, Dialogue) else "math"  # one format per file
        except RecordError as err:
            message = f"{path}:{lineno}: {err}"
            if strict:
                raise DataError(message) from None
            report.problems.append(message)
            continue
        report.records.append(record)
    if not report.records and strict:
        raise DataError(f"{path}: no records")
    return report


def read_jsonl_records(path: Path, kind: str = "auto", limit: int | None = None) -> list[Record]:
    return scan(path, kind, limit, strict=True).records
