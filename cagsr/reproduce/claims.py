"""The paper's claims as paired comparisons, and their verdicts on our held-out items.

A claim says system `a` beats (direction +1) or falls below (-1) system `b` on one metric. Every
RL row is also compared with No-RL (the paper's table has every method above it). Differences are
absolute (a paper figure of "-1% coherence" is read as -0.01).

    claims = claims_for("dialogue", ["star"], present_rows)
    results = judge(claims, items, n_boot=2000)   # items[(row, set, metric)] = per-seed {item: value}
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

from cagsr.evaluation.analysis.paired import compare, verdict
from cagsr.reproduce.tables import CONTENT_ROW, COT_ROWS, DIALOGUE_ROWS, PAPER, RANDOM

MULTI, SINGLE, NO_RL = "CAGSR multi-turn", "CAGSR single-turn (HF)", "No-RL"
METRICS = {"dialogue": ["coherence", "consistency", "reward"], "cot": ["accuracy", "step_correctness", "reward"]}
"""Metrics compared per table (reward: the paper's attention reward of the generated text)."""
PAPER_COLUMN = {"coherence": 0, "consistency": 1, "accuracy": 0, "step_correctness": 1}
POSITIONS = {"1-2": (1, 2), "3-5": (3, 5), "6+": (6, None)}
"""Dialogue: agent-turn positions judged apart (1 = a dialogue's first evaluated agent reply), to see
whether a difference grows with the history, as multi-turn training should make it."""
ABLATIONS = {  # row -> (metric, the paper's change against the full method)
    "dialogue": {"Ablation: no history coverage": ("coherence", -0.01),
                 "Ablation: no entropy clamping": ("consistency", -0.02)},
    "cot": {"Ablation: uniform weights": ("accuracy", -0.015)},
}


@dataclass(frozen=True)
class Claim:
    """One comparison: a against b on `metric` of held-out set `set`."""

    a: str
    """The system expected to differ."""
    b: str
    """The system it is compared with."""
    metric: str
    """Metric key of the evaluation rows."""
    set: str
    """Held-out set name."""
    direction: int
    """+1: a above b expected; -1: a below b expected."""
    paper: float | None
    """The paper's difference (a - b), None where it gives none."""
    kind: str
    """'claim' (stated in the paper), 'vs No-RL' (implied by its table) or 'question' (ours)."""


VERSUS_MULTI = {r.name for r in (*DIALOGUE_ROWS, *COT_ROWS) if r.versus_multi_turn}
"""Rows also held against CAGSR multi-turn on every metric: expected above it (the positive control) or
asked whether they are (the other rewards); the random control is expected below it."""


def _paper_diff(table: str, a: str, b: str, metric: str) -> float | None:
    col = PAPER_COLUMN.get(metric)
    fa, fb = PAPER[table].get(a), PAPER[table].get(b)
    if col is None or not fa or not fb or len(fa) <= col or len(fb) <= col:
        return None
    if not all(isinstance(f[col], int | float) for f in (fa, fb)):  # an ablation's "-1% coherence"
        return None
    return round(fa[col] - fb[col], 4)


def claims_for(table: str, sets: list[str], present: set[str]) -> list[Claim]:
    """Every comparison the table reports, limited to rows that ran."""
    out: list[Claim] = []
    for s in sets:
        for metric in METRICS[table]:
            if {MULTI, SINGLE} <= present:  # the paper claims coherence/consistency, accuracy/steps
                out.append(Claim(MULTI, SINGLE, metric, s, 1, _paper_diff(table, MULTI, SINGLE, metric),
                                 "claim" if metric in PAPER_COLUMN else "question"))
        for row, (metric, change) in ABLATIONS[table].items():
            if {row, MULTI} <= present:
                out.append(Claim(row, MULTI, metric, s, -1, change, "claim"))
        for row in sorted(VERSUS_MULTI & present) if MULTI in present else ():
            out += [Claim(row, MULTI, m, s, -1 if row == RANDOM else 1, None, "vs multi-turn")
                    for m in METRICS[table]]
        if {CONTENT_ROW, MULTI} <= present:
            out += [Claim(CONTENT_ROW, MULTI, m, s, 1, None, "question") for m in METRICS[table]]
        for row in sorted(present - {NO_RL}):
            if NO_RL in present:
                out += [Claim(row, NO_RL, m, s, 1, _paper_diff(table, row, NO_RL, m), "vs No-RL")
                        for m in METRICS[table]]
    return out


def by_position(rows: list[dict]) -> dict[str, list[dict]]:
    """Evaluation rows of one system and seed grouped by POSITIONS; a row's position is the rank of its
    turn among its dialogue's evaluated turns.

    >>> rows = [{"episode": "a", "turn": t} for t in (9, 1, 3, 5, 7, 11)] + [{"episode": "b", "turn": 2}]
    >>> {k: [(r["episode"], r["turn"]) for r in v] for k, v in by_position(rows).items()}
    {'1-2': [('a', 1), ('a', 3), ('b', 2)], '3-5': [('a', 5), ('a', 7), ('a', 9)], '6+': [('a', 11)]}
    """
    dialogues: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: (r["episode"], r["turn"])):
        dialogues.setdefault(r["episode"], []).append(r)
    groups: dict[str, list[dict]] = {label: [] for label in POSITIONS}
    for turns in dialogues.values():
        for position, r in enumerate(turns, start=1):
            label = next(k for k, (lo, hi) in POSITIONS.items() if lo <= position and (hi is None or position <= hi))
            groups[label].append(r)
    return {label: g for label, g in groups.items() if g}


def position_set(main_set: str, label: str) -> str:
    """The set name under which the items of one agent-turn position are keyed: 'star@3-5'."""
    return f"{main_set}@{label}"


def position_claims(table: str, main_set: str, present: set[str]) -> list[Claim]:
    """Multi-turn against single-turn and against No-RL on each metric at each agent-turn position
    (items keyed by `position_set`)."""
    pairs = [(MULTI, SINGLE), (MULTI, NO_RL)]
    return [Claim(a, b, metric, position_set(main_set, label), 1, None, "by position")
            for a, b in pairs if {a, b} <= present for metric in METRICS[table] for label in POSITIONS]


def judge(claims: list[Claim], items: dict[tuple[str, str, str], list[dict[str, float]]],
          n_boot: int, starts: int = 1) -> list[dict]:
    """One result per claim with data: the interval, per-seed differences, spread and verdict. Seed s
    of every row started from supervised model s mod `starts`; rows are compared on the models both have.
    Each claim's bootstrap is seeded by the claim itself, so its interval does not move when rows are added."""
    results = []
    for c in claims:
        a, b = items.get((c.a, c.set, c.metric)), items.get((c.b, c.set, c.metric))
        if not a or not b:
            continue
        comp = compare(a, b, n_boot=n_boot, seed=claim_seed(c), starts=starts)
        iv = comp.interval
        inside = None if c.paper is None or iv.n == 0 else bool(iv.low <= c.paper <= iv.high)
        results.append({"a": c.a, "b": c.b, "metric": c.metric, "set": c.set, "kind": c.kind,
                        "direction": c.direction, "paper": c.paper, "mean": iv.mean, "low": iv.low,
                        "high": iv.high, "n": iv.n, "seed_diffs": list(comp.seed_diffs),
                        "spread": comp.spread, "verdict": verdict(iv, c.direction), "paper_inside": inside,
                        "label": f"{c.a} − {c.b}: {c.metric} ({c.set})"})
    return results


def claim_seed(claim: Claim) -> int:
    """A bootstrap seed fixed by what the claim compares (the same in every run and table layout).

    >>> claim_seed(Claim("a", "b", "coherence", "star", 1, None, "vs No-RL")) == claim_seed(
    ...     Claim("a", "b", "coherence", "star", -1, 0.02, "paper"))
    True
    """
    return zlib.crc32(f"{claim.a}|{claim.b}|{claim.metric}|{claim.set}".encode())


def finite(x: float | None) -> bool:
    return x is not None and not math.isnan(x)
