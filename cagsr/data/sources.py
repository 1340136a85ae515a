"""One entry point for every data source: a file, generated samples, or a Hugging Face dataset.

    records = load_records(DataConfig(path="../shared/data/gsm8k_train.jsonl", limit=100))
    train, val = split_records(records, val_fraction=0.1, seed=0)
"""

from __future__ import annotations

import random
from pathlib import Path

from cagsr.data.config import DataConfig
from cagsr.data.generate import generate_dialogues, generate_math
from cagsr.data.readers import FileReport, scan
from cagsr.data.schema import Dialogue, MathProblem, Record
from cagsr.data.tables import is_saved_dataset, load_hub, scan_parquet, scan_saved_dataset

GENERATORS = {"generated:dialogue": generate_dialogues, "generated:math": generate_math}


def scan_path(path: Path, config: DataConfig, strict: bool = True) -> FileReport:
    """A local source by its shape: a saved dataset folder, a .parquet file, else JSON Lines."""
    columns = config.column_map()
    if is_saved_dataset(path):
        return scan_saved_dataset(path, config.split, config.kind, config.limit, strict, columns)
    if path.suffix.lower() in (".parquet", ".pq"):
        return scan_parquet(path, config.kind, config.limit, strict, columns)
    return scan(path, config.kind, config.limit, strict, columns)


def load_records(config: DataConfig) -> list[Record]:
    """Records of any supported source, limited to config.limit."""
    path = config.path
    if path in GENERATORS:
        count = min(config.num_generated, config.limit or config.num_generated)
        return list(GENERATORS[path](count, seed=config.seed))
    if path.startswith("hf:"):
        return load_hub(path[3:], config)
    return scan_path(Path(path).expanduser(), config).records


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
            texts += [u.text for u in r.conversation()]
        elif isinstance(r, MathProblem):
            texts += [r.question, *r.steps]
    return texts
