"""Tests of cagsr.salience.idf: hand-computed idf, thresholds, JSON roundtrip."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from cagsr.salience.idf import IdfTable

CORPUS = [
    "The train to Paris leaves at noon.",
    "The train is late again.",
    "Paris in the spring, the train in the rain.",
]


def test_fit_by_hand() -> None:
    table = IdfTable.fit(CORPUS)
    assert table.n_docs == 3
    # "the" and "train" are in all 3 documents: log(4 / 4) + 1 = 1.
    assert table.score("the") == pytest.approx(1.0, abs=1e-12)
    assert table.score("TRAIN") == pytest.approx(1.0, abs=1e-12)
    # "paris" in 2 documents: log(4 / 3) + 1; "noon" in 1: log(4 / 2) + 1.
    assert table.score("Paris") == pytest.approx(math.log(4 / 3) + 1, abs=1e-12)
    assert table.score("noon") == pytest.approx(math.log(2) + 1, abs=1e-12)
    # Unseen words get the largest idf there is: that of df = 0.
    assert table.score("zanzibar") == pytest.approx(math.log(4) + 1, abs=1e-12)
    assert table.score("zanzibar") >= max(table.idf.values())


def test_top_fraction() -> None:
    table = IdfTable(n_docs=10, idf={"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0})
    assert table.top_fraction(0.25) == 4.0
    assert table.top_fraction(0.5) == 3.0
    assert table.top_fraction(0.3) == 3.0  # ceil(0.3 * 4) = 2 words
    assert table.top_fraction(1.0) == 1.0
    assert IdfTable(n_docs=0).top_fraction(0.1) == IdfTable(n_docs=0).unseen_idf
    with pytest.raises(ValueError):
        table.top_fraction(0.0)


def test_salient_spans_skip_stop_words() -> None:
    table = IdfTable.fit(CORPUS)
    text = "The train to Zanzibar is at noon, and you are there."
    spans = table.salient_spans(text, threshold=math.log(2) + 1)
    # "you", "are", "there", "and" are unseen (max idf) but stop words.
    assert [text[s:e] for s, e in spans] == ["Zanzibar", "noon"]


def test_save_load_roundtrip(tmp_path: Path) -> None:
    table = IdfTable.fit([*CORPUS, "Ünïcode café 12.50"])
    path = tmp_path / "idf.json"
    table.save(path)
    loaded = IdfTable.load(path)
    assert loaded == table
    assert loaded.score("café") == table.score("café")
    (tmp_path / "other.json").write_text('{"idf": {}}')
    with pytest.raises(ValueError):
        IdfTable.load(tmp_path / "other.json")
