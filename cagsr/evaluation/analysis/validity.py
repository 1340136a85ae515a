"""Does the attention reward track quality? Spearman tables, a reward-hacking check and a scatter grid.

    table = validity_table(rows, level="turn") + validity_table(rows, level="episode")
    verdict = reward_hacking_check(history)      # history: per-iteration means over training
    validity_plot(rows, "runs/x/validity.png")

`rows` are per-turn dicts such as {"episode": 3, "coverage": 0.4, "focus": -2.1, "repetition": 0.1,
"reward": 0.2, "coherence": 0.7, "consistency": 1.0}; missing or non-finite values are skipped
pair by pair. Episode level first averages every column over the rows of one episode id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from cagsr.evaluation.analysis.bootstrap import cluster_resamples, percentile_interval, resample_indices

COMPONENTS = ("coverage", "focus", "repetition", "reward")
QUALITY = ("coherence", "consistency", "accuracy", "step_correctness")
Row = Mapping[str, Any]


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) else math.nan


def column(rows: Sequence[Row], key: str) -> np.ndarray:
    """Values of one key as floats, NaN where missing or not a number."""
    return np.array([_number(r.get(key)) for r in rows], dtype=float)


def present(rows: Sequence[Row], keys: Sequence[str]) -> list[str]:
    """The keys that have at least one finite value."""
    return [k for k in keys if np.isfinite(column(rows, k)).any()]


def aggregate_episodes(rows: Sequence[Row], keys: Sequence[str], episode_key: str = "episode") -> list[dict]:
    """One row per episode id (first-seen order): the mean of each key over that episode's turns."""
    groups: dict[Any, list[Row]] = {}
    for r in rows:
        groups.setdefault(r.get(episode_key), []).append(r)
    out = []
    for episode, members in groups.items():
        row: dict[str, Any] = {episode_key: episode, "turns": len(members)}
        for k in keys:
            values = column(members, k)
            row[k] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
        out.append(row)
    return out


def validity_table(
    rows: Sequence[Row],
    components: Sequence[str] = COMPONENTS,
    metrics: Sequence[str] = QUALITY,
    level: str = "turn",
    episode_key: str = "episode",
    n_boot: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Spearman rho with a bootstrap 95% CI for every (component, metric) pair present in the rows.

    level 'turn' correlates row by row; 'episode' correlates episode means.
    """
    if level not in ("turn", "episode"):
        raise ValueError(f"level must be turn or episode, got {level!r}")
    components, metrics = present(rows, components), present(rows, metrics)
    data = list(rows) if level == "turn" else aggregate_episodes(rows, [*components, *metrics], episode_key)
    out = []
    for comp in components:
        for metric in metrics:
            rho, low, high, n = spearman_ci(
                column(data, comp), column(data, metric), n_boot=n_boot, seed=seed
            )
            out.append(
                {
                    "level": level,
                    "component": comp,
                    "metric": metric,
                    "rho": rho,
                    "low": low,
                    "high": high,
                    "n": n,
                }
            )
    return out


def _rank_corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rho of each row pair (average ranks for ties), nan for a constant row."""
    ra = stats.rankdata(a, axis=1)
    rb = stats.rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (ra * rb).sum(axis=1) / denom, np.nan)


def spearman_ci(
    x: Sequence[float],
    y: Sequence[float],
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float, int]:
    """Spearman rho with a 95% percentile-bootstrap interval: (rho, low, high, n).

    Pairs with a NaN in either value are dropped; n is the number of pairs used. Fewer than 3
    pairs or a constant input gives nan for rho and its interval.
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xa.shape != ya.shape:
        raise ValueError(f"x and y differ in length: {xa.shape} vs {ya.shape}")
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    n = int(xa.size)
    if n < 3 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return math.nan, math.nan, math.nan, n
    rho = float(stats.spearmanr(xa, ya).statistic)
    idx = resample_indices(n, n_boot, seed)
    # resamples that drew one repeated value have no rank correlation: the interval skips them
    return rho, *percentile_interval(_rank_corr_rows(xa[idx], ya[idx])), n


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve for telling label 1 from label 0 by score (ties count half); NaN without
    both classes. scores, labels: [n]."""
    good, bad = labels == 1, labels == 0
    if not good.any() or not bad.any():
        return math.nan
    ranks = stats.rankdata(scores)
    n_good, n_bad = int(good.sum()), int(bad.sum())
    return float((ranks[good].sum() - n_good * (n_good + 1) / 2) / (n_good * n_bad))


def auc_ci(scores: Sequence[float], labels: Sequence[float], groups: Sequence[Any] | None = None,
           n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """AUC with a 95% percentile-bootstrap interval: (auc, low, high). Rows with a non-finite score are
    dropped; with groups the bootstrap resamples whole groups."""
    x, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=float)
    keep = np.isfinite(x)
    x, y = x[keep], y[keep]
    g = np.asarray(groups, dtype=object)[keep] if groups is not None else np.arange(len(x))
    point = auc(x, y)
    if math.isnan(point):
        return point, math.nan, math.nan
    return (point, *percentile_interval([auc(x[i], y[i]) for i in cluster_resamples(g, n_boot, seed)]))


def trend(values: Sequence[float]) -> dict[str, float]:
    """Least-squares slope per iteration and Spearman rho / p-value against the iteration index."""
    y = np.asarray(values, dtype=float)
    x = np.arange(len(y), dtype=float)
    keep = np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(y) < 3 or np.ptp(y) == 0:
        return {"slope": 0.0 if len(y) >= 2 else math.nan, "rho": math.nan, "p": math.nan, "n": int(len(y))}
    slope = float(np.polyfit(x, y, 1)[0])
    result = stats.spearmanr(x, y)
    return {"slope": slope, "rho": float(result.statistic), "p": float(result.pvalue), "n": int(len(y))}


def reward_hacking_check(
    history: Sequence[Row],
    reward_key: str = "reward",
    metrics: Sequence[str] = QUALITY,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Flag training where the reward rises while a quality metric falls, both significantly.

    `history` holds one row per training iteration (in order) with the mean reward and mean
    quality metrics of that iteration. A series rises (falls) when its least-squares slope is
    positive (negative) and its Spearman correlation with the iteration index has p < alpha.
    """
    reward = trend(column(history, reward_key))
    reward_rises = reward["slope"] > 0 and reward["p"] < alpha
    trends = {m: trend(column(history, m)) for m in present(history, metrics)}
    falling = [m for m, t in trends.items() if t["slope"] < 0 and t["p"] < alpha]
    hacking = bool(reward_rises and falling)
    if hacking:
        message = f"reward rises while {', '.join(falling)} fall{'s' if len(falling) == 1 else ''}: likely reward hacking"
    elif reward_rises:
        message = "reward rises and no quality metric falls significantly"
    else:
        message = "reward does not rise significantly"
    return {
        "hacking": hacking,
        "reward_rises": reward_rises,
        "falling": falling,
        "reward": reward,
        "metrics": trends,
        "alpha": alpha,
        "message": message,
    }


def validity_plot(
    rows: Sequence[Row],
    path: str | Path,
    components: Sequence[str] = COMPONENTS,
    metrics: Sequence[str] = QUALITY,
) -> Path:
    """A PNG grid of scatter plots, component (rows) against metric (columns), rho in each title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    components, metrics = present(rows, components), present(rows, metrics)
    if not components or not metrics:
        raise ValueError("validity_plot: the rows hold no reward component or no quality metric")
    # Figure + Agg canvas directly: no pyplot, so no global backend switch in the caller's process.
    fig = Figure(figsize=(3.2 * len(metrics), 2.8 * len(components)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(components), len(metrics), squeeze=False)
    for i, comp in enumerate(components):
        for j, metric in enumerate(metrics):
            x, y = column(rows, comp), column(rows, metric)
            keep = np.isfinite(x) & np.isfinite(y)
            ax = axes[i][j]
            ax.scatter(x[keep], y[keep], s=8, alpha=0.5)
            rho, low, high, n = spearman_ci(x, y, n_boot=200)
            ax.set_title(f"rho={rho:.2f} [{low:.2f}, {high:.2f}] n={n}", fontsize=8)
            ax.set_xlabel(comp, fontsize=8)
            ax.set_ylabel(metric, fontsize=8)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out
