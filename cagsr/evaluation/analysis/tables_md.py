"""Markdown rendering of metric summaries (one row per system)."""

from __future__ import annotations

import math


def fmt(value, digits: int = 3) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def summary_table(rows: dict[str, dict], columns: list[str]) -> str:
    """rows: system -> summary dict; columns present in a summary are shown, others as '—'."""
    lines = ["| system | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, summary in rows.items():
        lines.append(f"| {name} | " + " | ".join(fmt(summary.get(c, math.nan)) for c in columns) + " |")
    return "\n".join(lines)


DIALOGUE_COLUMNS = ["coherence", "consistency", "coverage", "focus", "repetition", "reward", "ms_per_turn"]
MATH_COLUMNS = ["accuracy", "step_correctness", "coverage", "focus", "repetition", "reward", "ms_per_token"]
