"""Every dialogue shape and container reads as the same records, and each one trains offline."""

import json
from pathlib import Path

import datasets
import pytest

from cagsr.data.config import DataConfig
from cagsr.data.readers import scan
from cagsr.data.sources import load_records

SYSTEM = "You are a support agent of Lumen Bank."
CHATS = [
    [("user", "My card AB-1234 was stolen in Porto."), ("assistant", "I blocked card AB-1234. Anything else?"),
     ("user", "Send a new one to Lisbon."), ("assistant", "A new card goes to Lisbon within five days.")],
    [("user", "I need a refund for order 77."), ("assistant", "Refund for order 77 started.")],
    [("user", "Can I raise my limit to 900 euros?"), ("assistant", "Your limit is now 900 euros.")],
]


def messages_row(chat, i):
    return {"id": f"c{i}", "messages": [{"role": "system", "content": SYSTEM},
                                        *({"role": r, "content": t} for r, t in chat)]}


def turns_row(chat, i):
    roles = {"assistant": "agent", "user": "user"}
    return {"id": f"c{i}", "turns": [{"role": "system", "text": SYSTEM},
                                     *({"role": roles[r], "text": t} for r, t in chat)]}


def pair_row(chat, i):
    """Prompt: system + every turn but the last reply; completion: the last reply (TRL's chat pairs)."""
    full = messages_row(chat, i)["messages"]
    return {"id": f"c{i}", "prompt": full[:-1], "completion": full[-1:]}


def jsonl(path, rows, bom=False, crlf=False):
    end = b"\r\n" if crlf else b"\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + end.join(json.dumps(r).encode() for r in rows) + end)
    return str(path)


def write_source(kind: str, tmp_path) -> DataConfig:
    rows = [messages_row(c, i) for i, c in enumerate(CHATS)]
    if kind == "turns-jsonl":
        return DataConfig(path=jsonl(tmp_path / "d.jsonl", [turns_row(c, i) for i, c in enumerate(CHATS)]))
    if kind == "messages-jsonl-bom-crlf":
        return DataConfig(path=jsonl(tmp_path / "d.jsonl", rows, bom=True, crlf=True))
    if kind == "pairs-jsonl":
        return DataConfig(path=jsonl(tmp_path / "d.jsonl", [pair_row(c, i) for i, c in enumerate(CHATS)]))
    if kind == "messages-parquet":
        datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "d.parquet"))
        return DataConfig(path=str(tmp_path / "d.parquet"))
    if kind == "pairs-save-to-disk":
        pairs = datasets.Dataset.from_list([pair_row(c, i) for i, c in enumerate(CHATS)])
        datasets.DatasetDict({"train": pairs, "test": pairs.select([0])}).save_to_disk(str(tmp_path / "saved"))
        return DataConfig(path=str(tmp_path / "saved"), split="train")
    if kind == "hub-folder-mapped":  # hf:NAME resolves a local folder of data files the same way as a hub name
        folder = tmp_path / "hub" / "data"
        folder.mkdir(parents=True)
        renamed = [{"uid": r["id"], "conversation": r["messages"]} for r in rows]
        datasets.Dataset.from_list(renamed).to_parquet(str(folder / "train-00000-of-00001.parquet"))
        return DataConfig(path=f"hf:{tmp_path / 'hub'}", split="train", columns=["messages=conversation", "id=uid"])
    raise AssertionError(kind)


FORMATS = ["turns-jsonl", "messages-jsonl-bom-crlf", "pairs-jsonl", "messages-parquet", "pairs-save-to-disk",
           "hub-folder-mapped"]


def as_plain(records):
    return [(r.id, [(u.role, u.text) for u in r.turns]) for r in records]


@pytest.mark.parametrize("kind", FORMATS)
def test_every_format_reads_as_the_same_dialogues(kind, tmp_path):
    records = load_records(write_source(kind, tmp_path))
    roles = {"assistant": "agent", "user": "user"}
    expected = [(f"c{i}", [("system", SYSTEM), *((roles[r], t) for r, t in chat)]) for i, chat in enumerate(CHATS)]
    assert as_plain(records) == expected
    first = records[0]
    assert first.system_prompt == SYSTEM and first.conversation()[0].role == "user"
    assert first.agent_turn_indices() == [2, 4]  # replies only: the system prompt is no agent turn


def test_bom_and_crlf_read_as_the_same_data(tmp_path):
    rows = [turns_row(c, i) for i, c in enumerate(CHATS)]
    plain = scan(Path(jsonl(tmp_path / "a.jsonl", rows))).records
    other = scan(Path(jsonl(tmp_path / "b.jsonl", rows, bom=True, crlf=True))).records
    assert as_plain(plain) == as_plain(other) and len(plain) == 3


def test_plain_text_prompt_completion_is_one_exchange(tmp_path):
    path = jsonl(tmp_path / "p.jsonl", [{"prompt": "Where is my parcel 55?", "completion": "Parcel 55 is in Faro."}])
    (record,) = load_records(DataConfig(path=path))
    assert [(u.role, u.text) for u in record.turns] == [("user", "Where is my parcel 55?"),
                                                        ("agent", "Parcel 55 is in Faro.")]


def test_content_parts_are_joined(tmp_path):
    row = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image"}]},
                        {"role": "assistant", "content": "Hello"}]}
    (record,) = load_records(DataConfig(path=jsonl(tmp_path / "p.jsonl", [row])))
    assert record.turns[0].text == "Hi"


@pytest.mark.parametrize("kind", FORMATS)
def test_every_format_trains_offline(kind, tmp_path):
    from cagsr.config import load_job
    from cagsr.ppo.config import TrainJob
    from cagsr.ppo.trainer import Trainer

    source = write_source(kind, tmp_path)
    overrides = {"data.path": source.path, "data.split": source.split, "data.columns": source.columns,
                 "data.val_fraction": 0.0, "run.output_dir": str(tmp_path / "run"), "run.threads": 1,
                 "ppo.iterations": 1, "ppo.epochs": 1, "heldout.episodes": 1, "rollout.episodes": 2,
                 "rollout.turns": 1, "rollout.sampling.max_new_tokens": 4}
    result = Trainer(load_job(TrainJob, "tiny", overrides)).train()
    assert len(result.history) == 1 and (result.run_dir / "model" / "config.json").exists()
    sample = json.loads((result.run_dir / "samples.jsonl").read_text().splitlines()[0])
    assert sample["conversation"][0] == {"role": "system", "text": SYSTEM}
    assert len(sample["turns"]) == 1  # one generated reply; the system prompt was not a turn
