r"""Salient-token masks over formatted histories: IDF, entities and keywords mapped to tokens.

    sal = Salience.fit(corpus_texts, sources="idf|entities|keywords", quantile=0.7)
    mask = sal.token_mask(formatted_history, keywords=["AB-1234"])   # list[bool], one per token

Besides the built-in sources (idf, entities, keywords), `salience.sources` takes your own, named
package.module:function or path/to/file.py:function: `fn(text: str) -> list[tuple[int, int]]`, the
half-open character spans of `text` (the formatted history) that are salient:

    # my_salience.py                 --salience.sources "idf|entities|my_salience.py:dates"
    import re

    def dates(text):
        return [m.span() for m in re.finditer(r"\d{1,2}/\d{1,2}", text)]

The signature is checked when the run starts; the spans each time the function runs (one-line errors).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cagsr.errors import ConfigError
from cagsr.formatting.history import FormattedHistory
from cagsr.salience.entities import entity_detector
from cagsr.salience.idf import IdfTable
from cagsr.salience.spans import STOP_WORDS, Span, parse_sources, salient_spans, spans_to_token_mask, words
from cagsr.utils.imports import is_import_path, load_callable

SpanSource = Callable[[str], list[Span]]
SIGNATURE = "fn(text: str) -> list[tuple[int, int]]"


def split_sources(sources: str) -> tuple[str, dict[str, SpanSource]]:
    """'idf|entities|my.py:dates' -> ('idf|entities', {'my.py:dates': dates}); user sources loaded and checked.

    >>> split_sources("idf | keywords")
    ('idf|keywords', {})
    """
    names = [s.strip() for s in re.split(r"[|,+\s]+", sources) if s.strip()]
    user = {n: load_callable(n, setting="salience.sources", call=SIGNATURE, args=1) for n in names if is_import_path(n)}
    return "|".join(n for n in names if n not in user), user


def user_spans(name: str, fn: SpanSource, text: str) -> list[Span]:
    """fn(text), checked to be (start, end) pairs of ints within text."""
    spans = fn(text)
    try:
        out = [(int(a), int(b)) for a, b in spans]
    except (TypeError, ValueError):
        raise ConfigError(f"salience.sources: {name} returned {type(spans).__name__} {str(spans)[:60]!r}, "
                          "expected a list of (start, end) character spans") from None
    bad = next(((a, b) for a, b in out if not 0 <= a <= b <= len(text)), None)
    if bad is not None:
        raise ConfigError(f"salience.sources: {name} returned the span {bad}, outside the text's 0..{len(text)}")
    return out


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
    user_sources: dict[str, SpanSource] = field(default_factory=dict)
    """Your own sources by import path -> fn(text) -> spans."""

    @classmethod
    def fit(cls, texts: list[str], sources: str, quantile: float, keywords: list[str] | None = None,
            detector_kind: str = "rules") -> Salience:
        names = cls.fitted(sources, None, None, keywords, detector_kind).sources
        idf = IdfTable.fit(texts) if "idf" in names else None
        threshold = occurrence_threshold(idf, texts, quantile) if idf else None
        return cls.fitted(sources, idf, threshold, keywords, detector_kind)

    @classmethod
    def fitted(cls, sources: str, idf: IdfTable | None, threshold: float | None, keywords: list[str] | None = None,
               detector_kind: str = "rules") -> Salience:
        """Salience from an IDF table fitted before (a saved reward definition); user sources loaded and checked."""
        builtin, user = split_sources(sources)
        try:
            names = parse_sources(builtin)
        except ValueError as exc:
            raise ConfigError(f"salience.sources: {exc} (or package.module:function, path/to/file.py:function)"
                              ) from None
        return cls(names, idf, threshold, list(keywords or []), detector_kind, user)

    def token_mask(self, history: FormattedHistory, keywords: list[str] | None = None) -> list[bool]:
        """One bool per history token: salient content tokens (template tokens never are)."""
        detector = entity_detector(self.detector_kind) if "entities" in self.sources else None
        spans = salient_spans(history.text, self.sources, self.idf, self.threshold,
                              [*self.keywords, *(keywords or [])], detector)
        for name, fn in self.user_sources.items():
            spans = [*spans, *user_spans(name, fn, history.text)]
        mask = spans_to_token_mask(history.offsets, spans)
        return [m and turn >= 0 for m, turn in zip(mask, history.token_turn, strict=True)]

    def save(self, folder: Path) -> None:
        if self.idf is not None:
            self.idf.save(folder / "idf.json")

    def load_idf(self, folder: Path) -> None:
        if (folder / "idf.json").exists():
            self.idf = IdfTable.load(folder / "idf.json")
