"""Readers for the dialogue and math JSON Lines formats, with errors that name file, line and field.

    records = read_jsonl_records(Path("star.jsonl"), kind="auto")    # raises DataError on the first problem
    report = validate_file(Path("star.jsonl"))                        # collects every problem instead

Dialogue shapes (turns, messages, prompt/completion) live in chat.py; Parquet and saved datasets in
tables.py. A UTF-8 byte-order mark and CRLF line ends read as the same data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cagsr.data.chat import DIALOGUE_KEYS, ROLE_ALIASES, RecordError, clean_text, is_dialogue, parse_dialogue
from cagsr.data.schema import Dialogue, MathProblem, Record
from cagsr.errors import DataError

__all__ = ["ROLE_ALIASES", "RecordError", "decode_json_line", "iter_lines", "parse_dialogue", "parse_math",
           "read_jsonl_records", "scan", "scan_items"]

MAX_LINE_CHARS = 1_000_000
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def normalise_number(text: str) -> str:
    """'1,234.50' -> '1234.5', '$12' -> '12', '7.0' -> '7': how answers are compared."""
    cleaned = re.sub(r"[,$%\s]", "", str(text)).rstrip(".")
    try:
        value = float(cleaned)
    except ValueError:
        return cleaned
    return str(int(value)) if value.is_integer() else repr(value)


def parse_math(obj: dict[str, Any], default_id: str) -> MathProblem:
    if "question" not in obj:
        raise RecordError("missing field 'question'")
    question = clean_text(obj["question"], "'question'")
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
    if is_dialogue(obj):
        return "dialogue"
    if "question" in obj:
        return "math"
    raise RecordError(f"neither a dialogue (no {DIALOGUE_KEYS}) nor a math problem (no 'question')")


def iter_lines(path: Path) -> Iterator[tuple[int, str | RecordError]]:
    """(line number, text) for every non-blank line; undecodable or huge lines come as errors."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a JSON Lines or Parquet file "
                        "or a dataset saved with save_to_disk") from None
    with handle:
        for lineno, raw in enumerate(handle, start=1):
            if lineno == 1:
                if raw.startswith(UTF16_BOMS):
                    yield lineno, RecordError("UTF-16 text (byte-order mark); save the file as UTF-8")
                    return
                raw = raw.removeprefix(UTF8_BOM)  # editors on Windows write one; it is not data
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


def parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a Parquet file, read 256 at a time so a limit does not read the whole file; the file is
    opened before the first row is asked for, so a missing or unreadable one raises DataError here."""
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a file that is not Parquet
        raise DataError(f"{path}: not a readable Parquet file ({type(err).__name__})") from None
    return (row for batch in handle.iter_batches(batch_size=256) for row in batch.to_pylist())


def _reject_constant(name: str) -> float:
    raise RecordError(f"invalid JSON ({name} is not a JSON number)")


def decode_json_line(item: str | RecordError) -> Any:
    """A line from iter_lines as a JSON value; unreadable lines and invalid JSON raise RecordError.

    Whatever json.loads can throw is caught: nesting deeper than the interpreter's recursion limit
    raises RecursionError, an integer of more than 4,300 digits a plain ValueError.
    """
    if isinstance(item, RecordError):
        raise item
    try:
        return json.loads(item, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise RecordError(f"invalid JSON ({err.msg} at column {err.colno})") from None
    except RecordError:
        raise
    except RecursionError:
        raise RecordError("invalid JSON (nested too deeply)") from None
    except ValueError as err:
        raise RecordError(f"invalid JSON ({str(err).split(':')[0]})") from None


def rename_columns(obj: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    """The record's fields under our names: columns maps our field -> the source's column."""
    if not columns:
        return obj
    missing = [theirs for theirs in columns.values() if theirs not in obj]
    if missing:
        raise RecordError(f"no column {missing[0]!r} (data.columns maps it; columns here: {', '.join(map(str, obj))})")
    renamed = {k: v for k, v in obj.items() if k not in columns.values()}
    return renamed | {ours: obj[theirs] for ours, theirs in columns.items()}


def parse_record(obj: Any, kind: str, default_id: str, columns: dict[str, str] | None = None) -> Record:
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    obj = rename_columns(obj, columns or {})
    kind = detect_kind(obj) if kind == "auto" else kind
    return parse_dialogue(obj, default_id) if kind == "dialogue" else parse_math(obj, default_id)


def parse_line(text: str, kind: str, default_id: str, columns: dict[str, str] | None = None) -> Record:
    return parse_record(decode_json_line(text), kind, default_id, columns)


@dataclass
class FileReport:
    """What `cagsr data` prints: the good records and every problem found."""

    path: Path
    records: list[Record] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


Item = str | dict | RecordError
"""A JSON line (str), an already decoded row (dict, from Parquet or a dataset), or a read error."""


def scan_items(path: Path, items: Iterable[tuple[int, Item]], kind: str = "auto", limit: int | None = None,
               strict: bool = True, columns: dict[str, str] | None = None, unit: str = "line") -> FileReport:
    """Parse numbered items; strict raises the first problem as DataError, else problems are collected.

    Messages place an item as 'file:12' (unit line) or 'file: row 12' (unit row)."""
    report = FileReport(path=path)
    for number, item in items:
        if limit is not None and len(report.records) >= limit:
            break
        try:
            if isinstance(item, RecordError):
                raise item
            default_id = f"{path.stem}-{number}"
            record = (parse_line(item, kind, default_id, columns) if isinstance(item, str)
                      else parse_record(item, kind, default_id, columns))
            kind = "dialogue" if isinstance(record, Dialogue) else "math"  # one format per file
        except RecordError as err:
            message = f"{path}:{number}: {err}" if unit == "line" else f"{path}: {unit} {number}: {err}"
            if strict:
                raise DataError(message) from None
            report.problems.append(message)
            continue
        report.records.append(record)
    if not report.records and strict:
        raise DataError(f"{path}: no records")
    return report


def scan(path: Path, kind: str = "auto", limit: int | None = None, strict: bool = True,
         columns: dict[str, str] | None = None) -> FileReport:
    """Parse a JSON Lines file (see scan_items)."""
    return scan_items(path, iter_lines(path), kind, limit, strict, columns)


def read_jsonl_records(path: Path, kind: str = "auto", limit: int | None = None) -> list[Record]:
    return scan(path, kind, limit, strict=True).records
