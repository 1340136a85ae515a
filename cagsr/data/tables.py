"""Tabular data sources: Parquet files, datasets saved with `save_to_disk`, and Hugging Face datasets
by name (a config, a split and a column mapping), all parsed by the same record readers as JSON Lines.

    report = scan_parquet(Path("train.parquet"), kind="auto")
    report = scan_saved_dataset(Path("my_dataset"), split="train")
    records = load_hub("HuggingFaceH4/no_robots", DataConfig(split="train", columns=["messages=messages"]))
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cagsr.data.config import DataConfig
from cagsr.data.hub import hub_unavailable
from cagsr.data.readers import FileReport, RecordError, parquet_rows, parse_math, parse_record, scan_items
from cagsr.data.schema import MathProblem, Record
from cagsr.errors import DataError

SAVED_DATASET_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / name).exists() for name in SAVED_DATASET_MARKERS)


def _datasets():
    try:
        import datasets
    except ImportError:
        raise DataError("the datasets package is not installed (pip install datasets)") from None
    return datasets


def _numbered(rows) -> Iterator[tuple[int, Any]]:
    return ((i, row) for i, row in enumerate(rows, start=1))


def scan_parquet(path: Path, kind: str = "auto", limit: int | None = None, strict: bool = True,
                 columns: dict[str, str] | None = None) -> FileReport:
    """Rows of a Parquet file, read in batches so a limit does not read the whole file."""
    return scan_items(path, _numbered(parquet_rows(path)), kind, limit, strict, columns, unit="row")


def _pick_split(loaded: Any, split: str, where: str):
    """A DatasetDict's split, or the Dataset itself."""
    if isinstance(loaded, _datasets().DatasetDict):
        if split not in loaded:
            raise DataError(f"{where}: no split {split!r} (splits: {', '.join(loaded.keys())})")
        return loaded[split]
    return loaded


def scan_saved_dataset(path: Path, split: str = "train", kind: str = "auto", limit: int | None = None,
                       strict: bool = True, columns: dict[str, str] | None = None) -> FileReport:
    """A Dataset or DatasetDict written by `save_to_disk`."""
    datasets = _datasets()
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:  # noqa: BLE001 - a damaged folder fails in many ways, all the same to the user
        raise DataError(f"{path}: not a readable saved dataset ({type(err).__name__})") from None
    rows = _pick_split(loaded, split, str(path))
    return scan_items(path, _numbered(rows), kind, limit, strict, columns, unit="row")


def _cached_dataset(datasets, repo: str) -> bool:
    """Whether a load without the hub could find `repo` in the datasets or hub cache (then it is tried)."""
    caches = [(getattr(datasets.config, "HF_DATASETS_CACHE", None), f"{repo.replace('/', '___')}*"),
              (getattr(datasets.config, "HF_HUB_CACHE", None), f"datasets--{repo.replace('/', '--')}")]
    return any(Path(c).is_dir() and any(Path(c).glob(pattern)) for c, pattern in caches if c)


def _gsm8k_row(row: dict[str, Any], index: int) -> MathProblem:
    """GSM8K's 'answer' is steps, then '#### N'; calculator annotations <<...>> are dropped."""
    body, _, final = row["answer"].partition("####")
    steps = [re.sub(r"<<[^>]*>>", "", line).strip() for line in body.strip().splitlines() if line.strip()]
    return parse_math({"question": row["question"], "steps": steps, "answer": final.strip()}, f"gsm8k-{index}")


def load_hub(name: str, config: DataConfig) -> list[Record]:
    """hf:NAME[:split] (or a local folder of data files): config.subset, config.split, config.columns.

    GSM8K is converted; other datasets need our fields, or data.columns naming where they are."""
    datasets = _datasets()
    repo, _, split = name.partition(":")
    split = split or config.split
    gsm8k = repo in ("gsm8k", "openai/gsm8k")
    local = Path(repo).expanduser().exists()
    if not local and not _cached_dataset(datasets, "openai/gsm8k" if gsm8k else repo) and (why := hub_unavailable()):
        raise DataError(f"hf:{name}: not a local folder or a cached dataset, and {why}")
    try:
        if gsm8k:
            rows = datasets.load_dataset("openai/gsm8k", config.subset or "main", split=split)
        else:
            rows = datasets.load_dataset(repo, config.subset, split=split)
    except Exception as err:  # noqa: BLE001 - any hub failure is the same user-facing problem
        reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise DataError(f"hf:{name}: could not load the dataset ({reason})") from None
    out: list[Record] = []
    columns = config.column_map()
    for i, row in enumerate(rows):
        if config.limit is not None and len(out) >= config.limit:
            break
        try:
            out.append(_gsm8k_row(row, i) if gsm8k else parse_record(row, config.kind, f"{repo}-{i}", columns))
        except RecordError as err:
            raise DataError(f"hf:{name}: row {i + 1}: {err}") from None
    if not out:
        raise DataError(f"hf:{name}: no records")
    return out
