"""One entry point for every data source: a file, generated samples, or a Hugging Face dataset.

    records = load_records(DataConfig(path="../shared/data/gsm8k_train.jsonl", limit=100))
    train, val = split_records(records, val_fraction=0.1, seed=0)
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from cagsr.data.config import DataConfig
from cagsr.data.generate import generate_dialogues, generate_math
from cagsr.data.readers import RecordError, parse_dialogue, parse_math, read_jsonl_records
from cagsr.data.schema import Dialogue, MathProblem, Record
from cagsr.errors import DataError

GENERATORS = {"generated:dialogue": generate_dialogues, "generated:math": generate_math}


def _gsm8k_row(row: dict[str, Any], index: int) -> MathProblem:
    """GSM8K's 'answer' is steps, then '#### N'; calculator annotations <<...>> are dropped."""
    body, _, final = row["answer"].partition("####")
    steps = [re.sub(r"<<[^>]*>>", "", line).strip() for line in body.strip().splitlines() if line.strip()]
    return parse_math({"question": row["question"], "steps": steps, "answer": final.strip()}, f"gsm8k-{index}")


def load_hub(name: str, kind: str, limit: int | None) -> list[Record]:
    """hf:NAME[:split]; GSM8K is converted, other datasets must already have our fields."""
    try:
        import datasets
    except ImportError:
        raise DataError(f"hf:{name}: the datasets package is not installed") from None
    repo, _, split = name.partition(":")
    split = split or "train"
    try:
        if repo in ("gsm8k", "openai/gsm8k"):
            rows = datasets.load_dataset("openai/gsm8k", "main", split=split)
        else:
            rows = datasets.load_dataset(repo, split=split)
    except Exception as err:  # noqa: BLE001 - any hub failure is the same user-facing problem
        raise DataError(f"hf:{name}: could not load from the hub ({type(err).__name__}; offline?)") from None
    out: list[Record] = []
    for i, row in enumerate(rows):
        if limit is not None and len(out) >= limit:
            break
        try:
            if repo.endswith("gsm8k"):
                out.append(_gsm8k_row(row, i))
            elif "turns" in row or kind == "dialogue":
                out.append(parse_dialogue(row, f"{repo}-{i}"))
            else:
                out.append(parse_math(row, f"{repo}-{i}"))
        except RecordError as err:
            raise DataError(f"hf:{name}: row {i}: {err}") from None
    return out


def load_records(config: DataConfig) -> list[Record]:
    """Records of any supported source, limited to config.limit."""
    path = config.path
    if path in GENERATORS:
        count = min(config.num_generated, config.limit or config.num_generated)
        return list(GENERATORS[path](count, seed=config.seed))
    if path.startswith("hf:"):
        return load_hub(path[3:], config.kind, config.limit)
    return read_jsonl_records(Path(path).expanduser(), config.kind, config.limit)


def split_records(records: list[Record], val_fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    """Deterministic shuffle-split; at least one validation record when there are two or more."""
    if val_fraction <= 0 or len(records) < 2:
        return list(records), []
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(records) * val_fraction))
    val = {i for i in order[:n_val]}
    return [r for i, r in enumerate(records) if i not in val], [r for i, r in enumerate(records) if i in val]


def record_kind(records: list[Record]) -> str:
    return "dialogue" if isinstance(records[0], Dialogue) else "math"


def corpus_texts(records: list[Record]) -> list[str]:
    """Every utterance, question and reference step of the records (the salience corpus)."""
    texts = []
    for r in records:
        if isinstance(r, Dialogue):
            texts += [u.text for u in r.turns]
        elif isinstance(r, MathProblem):
            texts += [r.question, *r.steps]
    return texts
