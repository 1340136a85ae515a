"""Heatmaps of abar over the history, one PNG per (episode, turn), readable by a person.

Rows are response tokens, columns history tokens; salient history tokens are marked in red under
the x axis, turn boundaries are drawn as vertical lines and labelled with the speaker.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _label(token: str) -> str:
    token = token.replace("\n", "⏎").strip() or "·"
    return token if len(token) <= 12 else token[:11] + "…"


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    """[(start, stop)] of the runs of True in flags."""
    out, start = [], None
    for j, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = j
        elif not flag and start is not None:
            out.append((start, j))
            start = None
    return out


def shade_sinks(ax, sinks: list[bool], ticks: range, excluded: bool) -> None:
    """Hatch the sink columns: grey when the reward leaves them out (content), outlined when it counts them."""
    for start, stop in _runs(sinks):
        ax.axvspan(start - 0.5, stop - 0.5, facecolor="grey" if excluded else "none", alpha=0.55 if excluded else 1.0,
                   hatch="//", edgecolor="white", linewidth=0)
    for tick, j in zip(ax.get_xticklabels(), ticks, strict=False):
        if sinks[j]:
            tick.set_color("grey")


def plot_turn_attention(abar: np.ndarray, history_tokens: list[str], token_turn: list[int], token_role: list[str],
                        salient: list[bool], response_tokens: list[str], title: str, path: Path,
                        sinks: list[bool] | None = None, sinks_excluded: bool = False) -> Path:
    """abar [S, N] -> heatmap PNG at `path`. sinks [N]: the reward.sink_tokens columns, hatched (grey when
    history_tokens=content leaves them out of coverage and focus)."""
    s, n = abar.shape
    width = min(60.0, max(8.0, 0.16 * n + 2))
    height = min(30.0, max(3.0, 0.18 * s + 2.2))
    fig, ax = plt.subplots(figsize=(width, height))
    vmax = float(np.quantile(abar, 0.995)) if abar.size else 1.0
    image = ax.imshow(abar, aspect="auto", cmap="viridis", interpolation="nearest", vmin=0.0, vmax=max(vmax, 1e-6))
    fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01, label="attention (head-mean, renormalised)")
    step = max(1, n // 150)
    ax.set_xticks(range(0, n, step))
    ax.set_xticklabels([_label(history_tokens[j]) for j in range(0, n, step)], rotation=90, fontsize=6)
    for tick, j in zip(ax.get_xticklabels(), range(0, n, step), strict=False):
        if salient[j]:
            tick.set_color("red")
            tick.set_fontweight("bold")
    ax.set_yticks(range(s))
    ax.set_yticklabels([_label(t) for t in response_tokens], fontsize=6)
    boundaries = [j for j in range(1, n) if token_turn[j] != token_turn[j - 1]]
    for j in boundaries:
        ax.axvline(j - 0.5, color="white", linewidth=0.8, alpha=0.8)
    for start in [0, *boundaries]:
        if token_turn[start] >= 0:
            ax.text(start, 0, f" {token_role[start]} {token_turn[start]}", fontsize=7, color="white",
                    va="top", clip_on=True)
    sal = np.flatnonzero(np.asarray(salient, dtype=bool))
    ax.scatter(sal, np.full(len(sal), s - 0.5), marker="^", color="red", s=8, clip_on=False, label="salient")
    if sinks is not None and any(sinks):
        shade_sinks(ax, sinks, range(0, n, step), sinks_excluded)
    sink_note = ", hatched grey: sink tokens left out of coverage and focus" if sinks_excluded else (
        ", hatched: sink tokens (counted)" if sinks is not None and any(sinks) else "")
    ax.set_xlabel(f"history token (red: salient{sink_note})")
    ax.set_ylabel("response token")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
