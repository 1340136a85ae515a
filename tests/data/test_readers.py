import json

import pytest

from cagsr.data.config import DataConfig
from cagsr.data.generate import generate_dialogues, generate_math
from cagsr.data.readers import normalise_number, scan
from cagsr.data.sources import load_records, split_records
from cagsr.errors import DataError


def write(tmp_path, lines, name="d.jsonl"):
    path = tmp_path / name
    path.write_bytes(b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines) + b"\n")
    return path


def dialogue(**over):
    base = {"id": "x", "domain": "bank", "turns": [{"role": "user", "text": "hi"}, {"role": "agent", "text": "hello"}]}
    return json.dumps(base | over)


def test_reads_real_star_and_gsm8k(shared_data):
    star = load_records(DataConfig(path=str(shared_data / "star_dialogues.jsonl"), limit=50))
    assert len(star) == 50 and all(d.turns for d in star)
    math = load_records(DataConfig(path=str(shared_data / "gsm8k_train.jsonl"), limit=20))
    assert math[0].answer == "72" and math[0].steps[0].startswith("Natalia sold")


def test_consecutive_turns_of_one_speaker_are_merged(tmp_path):
    turns = [{"role": "user", "text": "a"}, {"role": "user", "text": "b"}, {"role": "agent", "text": "c"}]
    (record,) = scan(write(tmp_path, [dialogue(turns=turns)])).records
    assert [u.text for u in record.turns] == ["a\nb", "c"]


@pytest.mark.parametrize("line, message", [
    ("{bad json", "invalid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (dialogue(turns=[]), "no turns"),
    (dialogue(turns=[{"role": "user", "text": "only me"}]), "one-sided"),
    (dialogue(turns=[{"role": "user"}, {"role": "agent", "text": "x"}]), "turn 1 has no text"),
    (dialogue(turns=[{"role": "user", "text": 3}, {"role": "agent", "text": "x"}]), "turn 1 text must be text"),
    (dialogue(turns=[{"role": "robot", "text": "x"}]), "role 'robot'"),
    (dialogue(turns="hello"), "'turns' must be a list"),
    (json.dumps({"question": "2+2?", "steps": ["4"]}), "missing answer"),
    (json.dumps({"question": "", "steps": [], "answer": 1}), "'question' is empty"),
    (json.dumps({"question": "q", "steps": "no", "answer": 1}), "'steps' must be a list"),
    (json.dumps({"hello": 1}), "missing field .turns."),
])
def test_malformed_lines_name_file_and_line(tmp_path, line, message):
    first = json.dumps({"question": "1+1?", "steps": ["2"], "answer": 2}) if "question" in line else dialogue()
    path = write(tmp_path, [first, line])
    with pytest.raises(DataError, match=rf"d.jsonl:2: .*{message}"):
        scan(path)


def test_non_utf8_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="d.jsonl:1: not UTF-8"):
        scan(write(tmp_path, [b'{"turns": "\xff\xfe"}']))
    with pytest.raises(DataError, match="file not found"):
        scan(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="no records"):
        scan(write(tmp_path, [b""], "empty.jsonl"))


def test_lenient_scan_collects_every_problem(tmp_path):
    report = scan(write(tmp_path, [dialogue(), "{x", dialogue(turns=[])]), strict=False)
    assert len(report.records) == 1 and len(report.problems) == 2


def test_normalise_number():
    assert normalise_number("1,234") == "1234" and normalise_number("$7.0") == "7" and normalise_number("2.5") == "2.5"


def test_generated_data_is_deterministic_and_well_formed():
    a, b = generate_dialogues(12, seed=3), generate_dialogues(12, seed=3)
    assert a == b and a != generate_dialogues(12, seed=4)
    assert {d.domain for d in a} == {"orders", "refunds", "accounts", "bookings"}
    assert all(3 <= len(d.turns) // 2 <= 6 for d in a)
    problems = generate_math(30, seed=0)
    for p in problems:
        assert p.answer.lstrip("-").isdigit() and len(p.steps) == 2
        assert p.answer in p.steps[-1]


def test_split_is_deterministic_and_disjoint():
    records = generate_math(20)
    train, val = split_records(records, 0.2, seed=1)
    assert len(val) == 4 and not {r.id for r in train} & {r.id for r in val}
    assert split_records(records, 0.2, seed=1) == (train, val)
