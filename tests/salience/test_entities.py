"""Tests of cagsr.salience.entities: the rule-based detector and the spaCy fallback."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cagsr.salience import entities
from cagsr.salience.entities import entity_detector, entity_spans, spacy_entity_spans


def _found(text: str) -> list[tuple[str, str]]:
    return [(text[s:e], label) for s, e, label in entity_spans(text)]


def test_customer_service_sentence() -> None:
    text = (
        "Hello Maria, this is John Smith from Acme Corp. Your order AB-1234 cost $12.50 "
        "and arrives at 10:30 on March 3rd, 2024. Email jane.doe@example.com or call (555) 123-4567."
    )
    found = _found(text)
    for expected in [
        ("Maria", "PROPER"),
        ("John Smith", "PROPER"),
        ("Acme Corp", "PROPER"),
        ("AB-1234", "ID"),
        ("$12.50", "MONEY"),
        ("10:30", "TIME"),
        ("March 3rd, 2024", "DATE"),
        ("jane.doe@example.com", "EMAIL"),
        ("(555) 123-4567", "PHONE"),
    ]:
        assert expected in found
    # Sentence-initial common words are not names.
    assert not {"Hello", "Your", "Email"} & {span for span, _ in found}


def test_numbers_codes_and_ids() -> None:
    text = "Paid 15% of 1,234.5 units, 3/4 cup, 2024-05-01 at 9am: ref #88231, id 12345678, SKU X7B9, ORD-2023-0042."
    found = _found(text)
    for expected in [
        ("15%", "PERCENT"),
        ("1,234.5", "NUMBER"),
        ("3/4", "NUMBER"),
        ("2024-05-01", "DATE"),
        ("9am", "TIME"),
        ("#88231", "ID"),
        ("12345678", "ID"),
        ("X7B9", "CODE"),
        ("ORD-2023-0042", "ID"),
    ]:
        assert expected in found


def test_sentence_initial_names_and_pronoun_i() -> None:
    found = _found("Paris is lovely. The Eiffel Tower is tall. I think Anna agrees, and I do too.")
    assert [span for span, _ in found] == ["Paris", "Eiffel Tower", "Anna"]
    found = _found("Dr. Watson met Sherlock Holmes.\nThanks, Bob")
    assert [span for span, _ in found] == ["Dr. Watson", "Sherlock Holmes", "Bob"]


def test_plain_text_has_no_entities() -> None:
    assert entity_spans("sure, that sounds good to me. see you then!") == []


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aZ09 .,:-$%@#/()\n'é")), max_size=60))
def test_spans_are_sorted_in_bounds_and_disjoint(text: str) -> None:
    spans = entity_spans(text)
    assert spans == sorted(spans)
    for (_, end, _), (next_start, _, _) in zip(spans, spans[1:], strict=False):
        assert end <= next_start
    assert all(0 <= s < e <= len(text) for s, e, _ in spans)


def test_spacy_missing_falls_back_to_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entities, "_load_spacy", lambda: None)
    text = "Call Maria at 10:30."
    assert spacy_entity_spans(text) == entity_spans(text)
    assert entity_detector("auto") is entity_spans
    assert entity_detector("rules") is entity_spans
    with pytest.raises(RuntimeError, match="en_core_web_sm"):
        entity_detector("spacy")
    with pytest.raises(ValueError):
        entity_detector("nope")  # type: ignore[arg-type]


def test_spacy_entities_are_completed_by_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "Maria Lopez ordered AB-1234 yesterday."

    def fake_nlp(doc_text: str) -> SimpleNamespace:
        ent = SimpleNamespace(start_char=0, end_char=11, label_="PERSON")
        return SimpleNamespace(ents=[ent])

    monkeypatch.setattr(entities, "_load_spacy", lambda: fake_nlp)
    assert entity_detector("auto") is spacy_entity_spans
    assert entity_detector("spacy") is spacy_entity_spans
    assert spacy_entity_spans(text) == [(0, 11, "PERSON"), (20, 27, "ID")]
