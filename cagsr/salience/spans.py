"""Character spans of salient words and their mapping onto sub-word tokens.

A span is a half-open character range (start, end) into the text. Sources of spans:
high-IDF words (`IdfTable.salient_spans`), entities (`cagsr.salience.entities`) and
user keywords (`keyword_spans`); `salient_spans` combines the chosen ones and
`spans_to_token_mask` turns them into the per-token salient mask the reward uses.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cagsr.salience.idf import IdfTable

Span = tuple[int, int]
EntityDetector = Callable[[str], list[tuple[int, int, str]]]

SOURCES = frozenset({"idf", "entities", "keywords"})

# A word is a run of letters/digits, optionally joined by an apostrophe, hyphen or
# dot followed by more word characters ("don't", "covid-19", "12.50", "e.g").
_WORD_RE = re.compile(r"\w+(?:['’.\-]\w+)*")

# Small inline English stop-word list: function words never count as salient, however
# rare a corpus makes them look.
_STOP_WORDS_TEXT = """
    a about above after again against all am an and any are aren't as at be because
    been before being below between both but by can can't cannot could couldn't did
    didn't do does doesn't doing don't down during each few for from further had hadn't
    has hasn't have haven't having he he'd he'll he's her here here's hers herself him
    himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself
    let's me more most mustn't my myself no nor not of off on once only or other ought
    our ours ourselves out over own same shan't she she'd she'll she's should shouldn't
    so some such than that that's the their theirs them themselves then there there's
    these they they'd they'll they're they've this those through to too under until up
    very was wasn't we we'd we'll we're we've were weren't what what's when when's where
    where's which while who who's whom why why's will with won't would wouldn't you
    you'd you'll you're you've your yours yourself yourselves also just may might must
    shall us yes okay ok oh well really like get got one s t
    """
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


def words(text: str) -> list[tuple[str, int, int]]:
    """Split text into (lowercased word, start, end) triples with character offsets.

    The lowercased word, with a curly apostrophe made straight so "don’t" and "don't"
    share one entry, is the IDF key; text[start:end] recovers the original.
    """
    return [(m.group().lower().replace("’", "'"), m.start(), m.end()) for m in _WORD_RE.finditer(text)]


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Sort spans and merge the ones that overlap or touch; empty spans are dropped."""
    merged: list[list[int]] = []
    for start, end in sorted((s, e) for s, e in spans if e > s):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def keyword_spans(text: str, keywords: Iterable[str]) -> list[Span]:
    """Case-insensitive whole-word matches of user keywords (multi-word allowed).

    Words of a multi-word keyword match across any run of whitespace.
    """
    spans: list[Span] = []
    for keyword in keywords:
        parts = keyword.split()
        if not parts:
            continue
        body = r"\s+".join(re.escape(p) for p in parts)
        # Lookarounds instead of \b so keywords that start or end with punctuation
        # ("c++", "$5") still match as whole words.
        pattern = re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)
        spans.extend((m.start(), m.end()) for m in pattern.finditer(text))
    return sorted(spans)


def spans_to_token_mask(offsets: Sequence[Sequence[int]], spans: Iterable[Span]) -> list[bool]:
    """Mark the tokens whose character range overlaps any span.

    offsets: one (start, end) per token, as a HF fast tokenizer's `offset_mapping`
    gives them. Overlap is tested on half-open ranges, so a token that carries a
    leading space (" Paris" -> (5, 11) for the span (6, 11)) is salient, while a token
    that only touches a span's edge is not. Empty ranges such as (0, 0) for special
    tokens are never salient.
    """
    merged = merge_spans(spans)
    starts = [s for s, _ in merged]
    mask: list[bool] = []
    for token_start, token_end in ((int(a), int(b)) for a, b in offsets):
        if token_end <= token_start:
            mask.append(False)
            continue
        # Merged spans are disjoint and sorted, so the last one starting before the
        # token's end is the only candidate that can reach into the token.
        i = bisect_left(starts, token_end) - 1
        mask.append(i >= 0 and merged[i][1] > token_start)
    return mask


def parse_sources(sources: str | Iterable[str]) -> set[str]:
    """Accept {"idf", "entities"} or the config form "idf | entities"; validate names."""
    if isinstance(sources, str):
        names = {s.strip() for s in re.split(r"[|,+\s]+", sources) if s.strip()}
    else:
        names = set(sources)
    unknown = names - SOURCES
    if unknown:
        raise ValueError(f"unknown salience sources {sorted(unknown)}; known: {sorted(SOURCES)}")
    return names


def salient_spans(
    text: str,
    sources: str | Iterable[str],
    idf: IdfTable | None = None,
    idf_threshold: float | None = None,
    keywords: Iterable[str] = (),
    detector: EntityDetector | None = None,
) -> list[Span]:
    """Union of the salient spans from the chosen sources, merged and sorted.

    sources: any of "idf" (needs `idf` and `idf_threshold`), "entities" (uses
    `detector`, the rule-based one by default) and "keywords" (uses `keywords`).
    """
    names = parse_sources(sources)
    spans: list[Span] = []
    if "idf" in names:
        if idf is None or idf_threshold is None:
            raise ValueError("the 'idf' salience source needs an IdfTable and idf_threshold")
        spans.extend(idf.salient_spans(text, idf_threshold))
    if "entities" in names:
        if detector is None:
            # Imported here: entities.py imports this module for STOP_WORDS.
            from cagsr.salience.entities import entity_spans as detector
        spans.extend((start, end) for start, end, _ in detector(text))
    if "keywords" in names:
        spans.extend(keyword_spans(text, keywords))
    return merge_spans(spans)
