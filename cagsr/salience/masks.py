"""Salient-token masks over formatted histories: IDF, entities and keywords mapped to tokens.

    sal = Salience.fit(corpus_texts, sources="idf|entities|keywords", quantile=0.7)
    mask = sal.token_mask(formatted_history, keywords=["AB-1234"])   # list[bool], one per token
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from cagsr.formatting.history import FormattedHistory
from cagsr.salience.entities import entity_detector
from cagsr.salience.idf import IdfTable
from cagsr.salience.spans import STOP_WORDS, parse_sources, salient_spans, spans_to_token_mask, words


def occurrence_threshold(idf: IdfTable, texts: list[str], quantile: float) -> float:
    """IDF value below which `quantile` of the corpus' (non-stop) word occurrences fall.

    Taken over occurrences, not over the vocabulary: most of a vocabulary is rare words, so a
    vocabulary quantile would leave almost nothing salient.
    """
    scores = sorted(idf.score(w) for text in texts for w, _, _ in words(text) if w not in STOP_WORDS)
    if not scores:
        return idf.unseen_idf
    return scores[min(len(scores) - 1, math.floor(quantile * len(scores)))]


@dataclass
class Salience:
    """Everything needed to mark salient history tokens; saved with the run (idf.json)."""

    sources: set[str]
    idf: IdfTable | None = None
    threshold: float | None = None
    keywords: list[str] = field(default_factory=list)
    detector_kind: str = "rules"

    @classmethod
    def fit(cls, texts: list[str], sources: str, quantile: float, keywords: list[str] | None = None,
            detector_kind: str = "rules") -> Salience:
        names = parse_sources(sources)
        idf = IdfTable.fit(texts) if "idf" in names else None
        threshold = occurrence_threshold(idf, texts, quantile) if idf else None
        return cls(names, idf, threshold, list(keywords or []), detector_kind)

    def token_mask(self, history: FormattedHistory, keywords: list[str] | None = None) -> list[bool]:
        """One bool per history token: salient content tokens (template tokens never are)."""
        detector = entity_detector(self.detector_kind) if "entities" in self.sources else None
        spans = salient_spans(history.text, self.sources, self.idf, self.threshold,
                              [*self.keywords, *(keywords or [])], detector)
        mask = spans_to_token_mask(history.offsets, spans)
        return [m and turn >= 0 for m, turn in zip(mask, history.token_turn, strict=True)]

    def save(self, folder: Path) -> None:
        if self.idf is not None:
            self.idf.save(folder / "idf.json")

    def load_idf(self, folder: Path) -> None:
        if (folder / "idf.json").exists():
            self.idf = IdfTable.load(folder / "idf.json")
