"""Figures for reports, returned as PNG bytes (embedded into the page as data URIs)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CURVES = [
    ("reward", ["reward/reward", "eval/reward"]),
    ("reward components", ["reward/coverage", "reward/focus", "reward/repetition"]),
    ("KL to reference", ["policy/kl_ref", "policy/approx_kl"]),
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
