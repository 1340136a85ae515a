"""Tests of cagsr.salience.spans: words, keywords, span merging, token masks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cagsr.salience.idf import IdfTable
from cagsr.salience.spans import (
    keyword_spans,
    merge_spans,
    parse_sources,
    salient_spans,
    spans_to_token_mask,
    words,
)

FAST = settings(max_examples=50, deadline=None)


def test_words_keep_offsets_and_lowercase() -> None:
    text = "Don't pay $12.50 to COVID-19 e.g. now!"
    found = words(text)
    assert [w for w, _, _ in found] == ["don't", "pay", "12.50", "to", "covid-19", "e.g", "now"]
    for word, start, end in found:
        assert text[start:end].lower() == word
    assert words("Don’t") == [("don't", 0, 5)]


def test_keyword_spans_whole_word_case_insensitive_multiword() -> None:
    text = "The Blue  Whale ate a category of cats; blue whale again. C++ rocks."
    spans = keyword_spans(text, ["blue whale", "cat", "c++", "  "])
    assert [text[s:e] for s, e in spans] == ["Blue  Whale", "blue whale", "C++"]


def test_merge_spans() -> None:
    assert merge_spans([(5, 8), (0, 3), (2, 4), (8, 9), (10, 10)]) == [(0, 4), (5, 9)]


def test_token_mask_with_leading_spaces_and_special_tokens() -> None:
    text = "Hello Parisian friends, bye"
    assert text[6:14] == "Parisian"
    offsets = [
        (0, 0),  # <bos>
        (0, 5),  # "Hello"
        (5, 6),  # " " on its own: touches the span's edge only
        (6, 9),  # "Par"
        (9, 14),  # "isian"
        (14, 22),  # " friends"
        (22, 23),  # ","
        (23, 27),  # " bye": leading space inside the token's range
        (0, 0),  # <eos>
    ]
    assert spans_to_token_mask(offsets, [(6, 14)]) == [
        False,
        False,
        False,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    # A span starting right after the space: " bye" (23, 27) still overlaps (24, 27).
    mask = spans_to_token_mask(offsets, [(24, 27), (15, 22)])
    assert mask == [False, False, False, False, False, True, False, True, False]
    assert spans_to_token_mask(offsets, []) == [False] * len(offsets)


@FAST
@given(
    offsets=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 8)), max_size=12),
    spans=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 8)), max_size=6),
)
def test_token_mask_matches_brute_force(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> None:
    offsets = [(a, a + w) for a, w in offsets]
    spans = [(a, a + w) for a, w in spans]
    expected = [b > a and any(max(a, s) < min(b, e) for s, e in spans if e > s) for a, b in offsets]
    assert spans_to_token_mask(offsets, spans) == expected


def test_salient_spans_combines_sources() -> None:
    idf = IdfTable.fit(["the cat sat", "the dog sat", "the zebra ran"])
    text = "The zebra met Anna and the dog."
    spans = salient_spans(
        text, {"idf", "entities", "keywords"}, idf=idf, idf_threshold=idf.score("zebra"), keywords=["met"]
    )
    # zebra, dog: df = 1 (idf); met: unseen (idf) and keyword; Anna: entity.
    assert [text[s:e] for s, e in spans] == ["zebra", "met", "Anna", "dog"]
    assert merge_spans(spans) == spans
    only_keywords = salient_spans(text, "keywords", keywords=["dog"])
    assert [text[s:e] for s, e in only_keywords] == ["dog"]
    assert salient_spans(text, "entities | keywords", keywords=["dog"]) == [(14, 18), (27, 30)]


def test_salient_spans_with_custom_detector() -> None:
    spans = salient_spans("abc def", {"entities"}, detector=lambda text: [(4, 7, "X")])
    assert spans == [(4, 7)]


def test_sources_are_validated() -> None:
    assert parse_sources("idf|entities") == {"idf", "entities"}
    with pytest.raises(ValueError, match="unknown salience sources"):
        parse_sources({"idf", "vibes"})
    with pytest.raises(ValueError, match="needs an IdfTable"):
        salient_spans("text", {"idf"})
