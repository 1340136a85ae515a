"""Named entities and numbers: the facts a later turn should keep attending to.

`entity_spans` is a dependable rule-based detector (regular expressions, no model):
money, percentages, dates, times, phone numbers, IDs, codes, plain numbers, emails,
URLs and capitalised names. `spacy_entity_spans` adds spaCy's NER when spaCy and
`en_core_web_sm` are installed and silently falls back to the rules otherwise.
Each detector maps text -> sorted, non-overlapping [(start, end, label)].
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any, Literal

from cagsr.salience.spans import STOP_WORDS

Entity = tuple[int, int, str]
Detector = Callable[[str], list[Entity]]

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_AMPM = r"(?:[ap]m|[ap]\.m\.)"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
# No letter or digit may touch a match on either side.
_L, _R = r"(?<![\w])", r"(?![\w])"

# Order matters: a span claimed by an earlier rule cannot be claimed by a later one
# (so "$12.50" is MONEY, not a NUMBER, and "AB-1234" is an ID, not a CODE).
_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("EMAIL", re.compile(r"[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    ("URL", re.compile(r"https?://[^\s<>\"')\]]+[^\s<>\"')\].,;:!?]")),
    (
        "MONEY",
        re.compile(
            rf"[$€£¥]\s?(?:{_NUM})(?:\s?(?:k|m|bn|thousand|million|billion){_R})?"
            rf"|{_L}(?:{_NUM})\s?(?:dollars?|usd|eur|euros?|gbp|pounds?|cents?|bucks){_R}",
            re.IGNORECASE,
        ),
    ),
    ("PERCENT", re.compile(rf"{_L}(?:{_NUM})\s?(?:%|percent{_R})", re.IGNORECASE)),
    (
        "DATE",
        re.compile(
            rf"{_L}(?:\d{{4}}-\d{{1,2}}-\d{{1,2}}|\d{{1,2}}[/.]\d{{1,2}}[/.]\d{{2,4}}"
            rf"|{_MONTH}\s+(?:{_DAY}(?:,?\s+\d{{4}})?|\d{{4}})|{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?){_R}"
        ),
    ),
    (
        "TIME",
        re.compile(
            rf"{_L}\d{{1,2}}:\d{{2}}(?::\d{{2}})?(?:\s?{_AMPM})?(?!\w)|{_L}\d{{1,2}}\s?{_AMPM}(?!\w)",
            re.IGNORECASE,
        ),
    ),
    (
        "PHONE",
        re.compile(
            rf"\+\d{{1,3}}(?:[\s.-]?\(?\d{{1,4}}\)?){{2,5}}{_R}"
            rf"|(?:\(\d{{3}}\)\s?|{_L}\d{{3}}[.-])\d{{3}}[.-]\d{{4}}{_R}"
        ),
    ),
    ("ID", re.compile(rf"{_L}[A-Z]{{1,6}}-\d[\dA-Z]*(?:-[\dA-Z]+)*{_R}|#\d+{_R}|{_L}\d{{6,}}{_R}")),
    ("NUMBER", re.compile(rf"{_L}\d+(?:st|nd|rd|th){_R}", re.IGNORECASE)),
    # Letters and digits mixed in one token (with - or _ joins): "A1B2", "SKU42", "v2";
    # the mix itself is checked by _ACCEPT, which a regex lookahead cannot bound cleanly.
    ("CODE", re.compile(rf"{_L}[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*{_R}")),
    ("NUMBER", re.compile(rf"{_L}[-+]?(?:\d+/\d+|{_NUM}){_R}")),
]


def _mixes_letters_and_digits(token: str) -> bool:
    return any(c.isalpha() for c in token) and any(c.isdigit() for c in token)


# Extra checks a rule's match must pass to count.
_ACCEPT: dict[str, Callable[[str], bool]] = {"CODE": _mixes_letters_and_digits}

# A capitalised word (or title abbreviation) and runs of them joined by single spaces.
_CAP_WORD = r"(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr)\.|[A-Z][\w'’-]*"
_PROPER_RE = re.compile(rf"{_L}(?:{_CAP_WORD})(?:[ \t]+(?:{_CAP_WORD}))*")
# "I" is capitalised anywhere, so it never marks a name.
_ALWAYS_COMMON = frozenset({"i", "i'm", "i've", "i'll", "i'd", "i’m", "i’ve", "i’ll", "i’d"})
# Words that open sentences in conversation; with STOP_WORDS they decide whether a
# sentence-initial capitalised word is ordinary or a name.
_COMMON_STARTERS_TEXT = """
    hello hi hey dear thanks thank please sorry sure great good fine right now today
    tomorrow yesterday tonight however therefore first second third next finally then
    also still maybe perhaps actually sounds let lets tell give show find make take
    book check send call help need want add remove cancel change update yes no ok okay
    alright well so but and or because although though since unless after before when
    while as if what which who where why how can could would should will shall may
    might must do does did is are was were am have has had there here this that these
    those it its my your our their his her we you they he she one two three all any
    each every some many much more most few several both either neither another other
    such only just even very quite rather too instead meanwhile otherwise besides
    anyway note step answer question solution total thus hence email order call
    message text reply ask try wait look see go come keep put set start stop open
    close pay buy use got get okay oh welcome congratulations unfortunately
    """
_COMMON_STARTERS = frozenset(_COMMON_STARTERS_TEXT.split())
COMMON_WORDS = STOP_WORDS | _COMMON_STARTERS
_OPENERS = " \t\r\n\"'“‘([{*-•"


def _is_sentence_start(text: str, index: int) -> bool:
    """True when only whitespace/opening punctuation separates index from a sentence end."""
    j = index - 1
    while j >= 0 and text[j] in _OPENERS:
        if text[j] == "\n":
            return True
        j -= 1
    return j < 0 or text[j] in ".!?:;"


def _key(word: str) -> str:
    return re.sub(r"['’]s$", "", word.lower())


def _is_ordinary_opener(text: str, start: int, end: int) -> bool:
    """A common word capitalised only because it opens a sentence ("The", "Thanks")."""
    return _is_sentence_start(text, start) and _key(text[start:end]) in COMMON_WORDS


def _proper_spans(text: str) -> list[Entity]:
    """Runs of capitalised words, minus "I" and ordinary sentence-initial words."""
    found: list[Entity] = []
    for run in _PROPER_RE.finditer(text):
        parts = [(m.start() + run.start(), m.end() + run.start()) for m in re.finditer(r"\S+", run.group())]
        # Split the run wherever an "I" sits, then trim common sentence openers.
        groups: list[list[tuple[int, int]]] = [[]]
        for start, end in parts:
            if _key(text[start:end]) in _ALWAYS_COMMON:
                groups.append([])
            else:
                groups[-1].append((start, end))
        for group in groups:
            while group and _is_ordinary_opener(text, *group[0]):
                group.pop(0)
            if group:
                found.append((group[0][0], group[-1][1], "PROPER"))
    return found


def _overlaps(start: int, end: int, taken: list[Entity]) -> bool:
    return any(start < e and s < end for s, e, _ in taken)


def _add_non_overlapping(taken: list[Entity], candidates: list[Entity]) -> None:
    for start, end, label in candidates:
        if end > start and not _overlaps(start, end, taken):
            taken.append((start, end, label))


def entity_spans(text: str) -> list[Entity]:
    """Rule-based entities of text: sorted, non-overlapping (start, end, label).

    Labels: EMAIL, URL, MONEY, PERCENT, DATE, TIME, PHONE, ID, CODE, NUMBER, PROPER.
    """
    taken: list[Entity] = []
    for label, pattern in _RULES:
        accept = _ACCEPT.get(label)
        matches = [m for m in pattern.finditer(text) if accept is None or accept(m.group())]
        _add_non_overlapping(taken, [(m.start(), m.end(), label) for m in matches])
    _add_non_overlapping(taken, _proper_spans(text))
    return sorted(taken)


@cache
def _load_spacy() -> Any | None:
    """spaCy's small English pipeline, or None when spaCy or the model is missing."""
    try:
        import spacy

        return spacy.load("en_core_web_sm")
    except Exception:  # any failure (import, missing model, version clash) means "no spaCy"
        return None


def spacy_available() -> bool:
    return _load_spacy() is not None


def spacy_entity_spans(text: str) -> list[Entity]:
    """spaCy NER entities, completed by the rules for what NER does not label
    (emails, IDs, codes); the rule-based detector alone when spaCy is missing."""
    nlp = _load_spacy()
    if nlp is None:
        return entity_spans(text)
    taken: list[Entity] = [(ent.start_char, ent.end_char, ent.label_) for ent in nlp(text).ents]
    _add_non_overlapping(taken, entity_spans(text))
    return sorted(taken)


def entity_detector(kind: Literal["auto", "rules", "spacy"] = "auto") -> Detector:
    """Pick a detector: "rules", "spacy" (raises if spaCy or its model is missing) or
    "auto" (spaCy when available, else the rules, without a word)."""
    if kind == "rules":
        return entity_spans
    if kind == "spacy":
        if not spacy_available():
            raise RuntimeError(
                "spaCy entity detection needs `pip install spacy` and "
                "`python -m spacy download en_core_web_sm`; use kind='rules' or 'auto'"
            )
        return spacy_entity_spans
    if kind == "auto":
        return spacy_entity_spans if spacy_available() else entity_spans
    raise ValueError(f"unknown entity detector {kind!r}; known: auto, rules, spacy")
