"""The every-signal table of `cagsr validity`: each signal of the one scoring pass against the human scores.

    table = signal_table(scores, SIGNALS, n_boot=1000)      # evaluation/correlation.py
    print(signals_markdown(table))

Signals, by family (the score rows of evaluation/human_validity.py):
  paper      the attention reward's components under reward.history_tokens all and content
  attention  diagnostics of the same attention: its entropy, the share on the first / the sink tokens
  per-head   the lookback ratio (Lookback Lens) averaged over every head, and over the attention.heads
             selection (the label-free retrieval heads of `cagsr heads`) when one is set
  log-prob   the reply's mean log-prob, predictive entropy and self-certainty (reward/intrinsic.py)
  control    reply length (model tokens, words) and a seeded random score (the spurious-reward control)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cagsr.evaluation.analysis.correlation import CONTROL, cell

SIGNALS: dict[str, str] = {
    "all/coverage": "paper", "all/focus": "paper", "all/repetition": "paper", "all/reward": "paper",
    "content/coverage": "paper", "content/focus": "paper", "content/reward": "paper",
    "all/entropy": "attention", "content/entropy": "attention", "first_mass": "attention",
    "all/sink_mass": "attention",
    "mean_lookback": "per-head", "heads_lookback": "per-head",
    "logprob": "log-prob", "predictive_entropy": "log-prob", "self_certainty": "log-prob",
    "length_tokens": "control", "length_words": "control", "random": "control",
}
"""Every signal `cagsr validity` reports, in table order, with its family."""


def signals_markdown(table: Sequence[Mapping[str, Any]]) -> str:
    """The table as Markdown: Spearman, Pearson and the length-partial Spearman (AUC for 0/1 scores)."""
    if not table:
        return "(no signal had a value)"
    binary = table[0]["binary"]
    figures = ["auc", "partial"] if binary else ["spearman", "pearson", "partial"]
    names = {"auc": "AUC", "spearman": "Spearman", "pearson": "Pearson",
             "partial": f"Spearman given {CONTROL}"}
    lines = ["| family | signal | " + " | ".join(f"{names[f]} [95% CI]" for f in figures) + " | n | contexts |",
             "|---|---|" + "---|" * len(figures) + "---|---|"]
    for row in table:
        cells = " | ".join(cell(row, f) for f in figures)
        family = SIGNALS.get(row["signal"], "")
        lines.append(f"| {family} | {row['signal']} | {cells} | {row['n']} | {row['contexts']} |")
    return "\n".join(lines)
