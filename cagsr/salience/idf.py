"""Inverse document frequency of words, fitted on the training corpus.

High-IDF words are rare in the corpus and so carry the content of a conversation
(names, products, numbers); they form one source of the salient set S_t.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cagsr.salience.spans import STOP_WORDS, Span, words

_FORMAT = "cagsr-idf-v1"


@dataclass
class IdfTable:
    """Smoothed IDF per lowercased word: idf = log((1 + n_docs) / (1 + df)) + 1.

    Words never seen in fitting score `unseen_idf`, the value df = 0 would give, which
    is the largest idf the table can produce: a word the corpus never saw is rare.
    """

    n_docs: int
    idf: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(cls, texts: Iterable[str]) -> IdfTable:
        """Count, for every word, the number of texts (documents) it appears in."""
        df: Counter[str] = Counter()
        n_docs = 0
        for text in texts:
            n_docs += 1
            df.update({word for word, _, _ in words(text)})
        idf = {word: math.log((1 + n_docs) / (1 + count)) + 1 for word, count in df.items()}
        return cls(n_docs=n_docs, idf=idf)

    @property
    def unseen_idf(self) -> float:
        return math.log(1 + self.n_docs) + 1

    def score(self, word: str) -> float:
        return self.idf.get(word.lower(), self.unseen_idf)

    def top_fraction(self, q: float) -> float:
        """Threshold such that the top fraction q of the vocabulary has idf >= it.

        q in (0, 1]; ties at the threshold are all included. An empty table returns
        `unseen_idf`, so only unseen words pass.
        """
        if not 0 < q <= 1:
            raise ValueError(f"q must be in (0, 1], got {q}")
        if not self.idf:
            return self.unseen_idf
        ranked = sorted(self.idf.values(), reverse=True)
        return ranked[max(1, math.ceil(q * len(ranked))) - 1]

    def salient_spans(self, text: str, threshold: float) -> list[Span]:
        """Character spans of the non-stop words of text whose idf is >= threshold."""
        return [
            (start, end)
            for word, start, end in words(text)
            if word not in STOP_WORDS and self.score(word) >= threshold
        ]

    def save(self, path: str | Path) -> None:
        payload = {"format": _FORMAT, "n_docs": self.n_docs, "idf": self.idf}
        Path(path).write_text(json.dumps(payload, ensure_ascii=False, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> IdfTable:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        if payload.get("format") != _FORMAT:
            raise ValueError(f"{path} is not an IDF table saved by IdfTable.save")
        return cls(n_docs=int(payload["n_docs"]), idf={k: float(v) for k, v in payload["idf"].items()})
