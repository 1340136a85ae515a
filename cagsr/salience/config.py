"""Which history tokens are salient: the sources and their settings (the `salience:` section)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cagsr.config import check_range


@dataclass
class SalienceConfig:
    sources: str = "idf|entities|keywords"
    """Salient-token sources, combined with |: idf, entities, keywords, or your own fn(text) -> [(start, end)]
    character spans named package.module:function or path/to/file.py:function (cagsr.salience.masks)."""
    idf_quantile: float = 0.7
    """Words rarer than this share of the corpus' word occurrences are salient (idf source)."""
    keywords: list[str] = field(default_factory=list)
    """User keywords that are always salient (records' meta keywords are added)."""
    entity_detector: Literal["auto", "rules", "spacy"] = "rules"
    """Entity detector: the rule-based one, spaCy, or auto (spaCy when installed)."""

    def __post_init__(self) -> None:
        check_range("salience.idf_quantile", self.idf_quantile, low=0.0, high=1.0)
