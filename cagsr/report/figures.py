"""Figures for reports, returned as PNG bytes (embedded into the page as data URIs)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CURVES = [
    ("reward", ["reward/reward", "eval/reward"]),
    ("reward components", ["reward/coverage", "reward/focus", "reward/repetition"]),
    ("KL to reference", ["policy/kl_ref_k3", "policy/kl_ref", "policy/approx_kl"]),
    ("PPO", ["policy/clip_frac", "policy/entropy"]),
    ("critic", ["loss/value", "value/explained_variance"]),
    ("responses", ["policy/response_len", "policy/distinct2", "eval/distinct2"]),
    ("quality proxies", ["eval/bleu", "eval/accuracy"]),
    ("time per phase (s)", ["time/rollout", "time/score", "time/reference", "time/critic", "time/update"]),
]


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def training_curves(runs: dict[str, list[dict]]) -> bytes | None:
    """One panel per metric group; one line per run (and per metric of the group)."""
    panels = [(title, keys) for title, keys in CURVES
              if any(k in m for metrics in runs.values() for m in metrics for k in keys)]
    if not panels:
        return None
    cols = 2
    rows = (len(panels) + 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(11, 3.0 * rows), squeeze=False)
    for ax, (title, keys) in zip(axes.flat, panels, strict=False):
        for run, metrics in runs.items():
            for key in keys:
                points = [(m["step"], m[key]) for m in metrics if isinstance(m.get(key), int | float)]
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, marker="o", markersize=3, label=f"{run}: {key}" if len(runs) > 1 else key)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("iteration")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    return png_bytes(fig)


VERDICT_COLOURS = {"holds": "tab:green", "not shown": "tab:gray", "reversed": "tab:red"}


def forest_plot(comparisons: list[dict], title: str = "paired differences") -> bytes | None:
    """Forest plot: one line per comparison {'label', 'mean', 'low', 'high', 'verdict', 'paper'}: the
    mean difference with its interval (coloured by verdict), the paper's difference as an x, 0 dashed."""
    rows = [c for c in comparisons if c.get("n", 1) and all(isinstance(c.get(k), int | float) for k in ("low", "high"))]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.8 + 0.28 * len(rows)))
    for y, c in enumerate(reversed(rows)):
        colour = VERDICT_COLOURS.get(c.get("verdict", ""), "tab:blue")
        ax.plot([c["low"], c["high"]], [y, y], color=colour, linewidth=2)
        ax.plot([c["mean"]], [y], "o", color=colour, markersize=4)
        if isinstance(c.get("paper"), int | float):
            ax.plot([c["paper"]], [y], "x", color="black", markersize=5)
    ax.axvline(0.0, color="black", linestyle="--", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [c["label"] for c in reversed(rows)], fontsize=7)
    ax.set_xlabel("a − b (95% paired bootstrap interval; x: the paper's difference)")
    ax.set_title(title + " — green: holds, grey: not shown, red: reversed", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)


def term_bars(labels: list[str], terms: dict[str, list[float]], totals: list[float], title: str) -> bytes | None:
    """One row per label: each term's signed contribution as a bar stacked away from 0 on its own side
    (gains right, losses left), the total as a black dot; `terms` name -> one value per label."""
    if not labels:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.8 + 0.32 * len(labels)))
    ys = range(len(labels) - 1, -1, -1)  # the first label on top
    right, left = [0.0] * len(labels), [0.0] * len(labels)
    for (name, values), colour in zip(terms.items(), ("tab:blue", "tab:orange", "tab:green", "tab:purple"),
                                      strict=False):
        starts = [r if v >= 0 else lft for v, r, lft in zip(values, right, left, strict=True)]
        ax.barh(list(ys), values, left=starts, color=colour, height=0.6, label=name)
        right = [r + max(v, 0.0) for v, r in zip(values, right, strict=True)]
        left = [lft + min(v, 0.0) for v, lft in zip(values, left, strict=True)]
    ax.plot(totals, list(ys), "o", color="black", markersize=4, label="total")
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(list(ys), labels, fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)
