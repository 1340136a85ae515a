"""Session fixtures: one MiniLM embedder (its text cache is shared by every test) and small data slices."""

from __future__ import annotations

import pytest

from cagsr.data.readers import read_jsonl_records
from cagsr.evaluation.metrics.embedding import Embedder


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def star(shared_data):
    """The first 400 STAR dialogues (all 13 domains appear among them)."""
    return read_jsonl_records(shared_data / "star_dialogues.jsonl", kind="dialogue", limit=400)


@pytest.fixture(scope="session")
def gsm8k(shared_data):
    return read_jsonl_records(shared_data / "gsm8k_train.jsonl", kind="math", limit=120)
