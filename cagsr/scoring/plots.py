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


def plot_turn_attention(abar: np.ndarray, history_tokens: list[str], token_turn: list[int], token_role: list[str],
                        salient: list[bool], response_tokens: list[str], title: str, path: Path) -> Path:
    """abar [S, N] -> heatmap PNG at `path`."""
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
    ax.set_xlabel("history token (red: salient)")
    ax.set_ylabel("response token")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
