"""Salient history tokens: high-IDF words, entities and keywords, mapped to tokens."""

from cagsr.salience.entities import entity_detector, entity_spans, spacy_entity_spans
from cagsr.salience.idf import IdfTable
from cagsr.salience.spans import (
    STOP_WORDS,
    keyword_spans,
    merge_spans,
    salient_spans,
    spans_to_token_mask,
    words,
)

__all__ = [
    "STOP_WORDS",
    "IdfTable",
    "entity_detector",
    "entity_spans",
    "keyword_spans",
    "merge_spans",
    "salient_spans",
    "spacy_entity_spans",
    "spans_to_token_mask",
    "words",
]
