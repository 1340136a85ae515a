"""How well each signal tracks human scores: correlations with context-bootstrap intervals, length-partial.

    table = signal_table(scores, ["all/reward", "self_certainty", "length_tokens"], target="label")
    table[0]   # {"signal", "spearman", "spearman_low", ..., "pearson", ..., "partial", ..., "n", "contexts"}

Continuous scores get Spearman and Pearson, binary (0/1) ones the AUC; every figure has a 95% percentile
bootstrap interval that resamples contexts (replies to the same context are drawn together: they share
their history, so they are not independent), and next to it the partial Spearman correlation given reply
length (length alone correlates with human scores on the ratings sets). Rows missing a value are dropped
pair by pair. Shapes: n rated replies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from cagsr.evaluation.analysis.bootstrap import cluster_resamples, percentile_interval
from cagsr.evaluation.analysis.validity import auc, column

CONTROL = "length_tokens"
"""The control of the partial correlations: reply length in the scoring model's tokens."""


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of x, y [n]; NaN for fewer than 3 pairs or a constant input."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rho of x, y [n] (average ranks for ties): Pearson r of the ranks."""
    return pearson(stats.rankdata(x), stats.rankdata(y))


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Spearman correlation of x and y given z, all [n]: on the ranks,
    (r_xy - r_xz r_yz) / sqrt((1 - r_xz^2)(1 - r_yz^2)); NaN when x or y is a function of z's rank."""
    rx, ry, rz = (stats.rankdata(v) for v in (x, y, z))
    r_xy, r_xz, r_yz = pearson(rx, ry), pearson(rx, rz), pearson(ry, rz)
    denom = (1 - r_xz**2) * (1 - r_yz**2)
    if not math.isfinite(r_xy * r_xz * r_yz) or denom <= 1e-12:
        return math.nan
    return float((r_xy - r_xz * r_yz) / math.sqrt(denom))


def context_bootstrap(statistic: Callable[..., float], arrays: Sequence[np.ndarray], groups: Sequence[Any],
                      n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """statistic(*arrays) and its 95% percentile interval over n_boot resamples of whole groups (contexts):
    (value, low, high). arrays: each [n], aligned with groups [n]; NaN interval when the value is NaN."""
    point = statistic(*arrays)
    if not math.isfinite(point):
        return point, math.nan, math.nan
    draws = [statistic(*(a[i] for a in arrays)) for i in cluster_resamples(groups, n_boot, seed)]
    return (point, *percentile_interval(draws))


def _figures(x: np.ndarray, y: np.ndarray, z: np.ndarray | None, binary: bool) -> dict[str, Callable]:
    """The statistics of one signal: name -> fn over (x, y[, z])."""
    out: dict[str, Callable] = {"auc": auc} if binary else {"spearman": spearman, "pearson": pearson}
    if z is not None:
        out["partial"] = partial_spearman
    return out


def signal_row(x: np.ndarray, y: np.ndarray, z: np.ndarray | None, groups: np.ndarray, binary: bool,
               n_boot: int, seed: int) -> dict[str, Any]:
    """Every figure of one signal x against the scores y (partial given z when z is not None), with intervals."""
    keep = np.isfinite(x) & np.isfinite(y) & (np.isfinite(z) if z is not None else True)
    x, y, g = x[keep], y[keep], groups[keep]
    z = z[keep] if z is not None else None
    row: dict[str, Any] = {"n": int(keep.sum()), "contexts": len(set(g.tolist()))}
    for name, fn in _figures(x, y, z, binary).items():
        arrays = (x, y, z) if name == "partial" else (x, y)
        value, low, high = context_bootstrap(fn, arrays, g, n_boot, seed)
        row |= {name: value, f"{name}_low": low, f"{name}_high": high}
    return row


def signal_table(scores: Sequence[Mapping[str, Any]], signals: Sequence[str], target: str = "label",
                 control: str | None = CONTROL, group_key: str = "group", n_boot: int = 1000,
                 seed: int = 0) -> list[dict[str, Any]]:
    """One row per signal present in the scores: AUC (0/1 target) or Spearman and Pearson (continuous), and the
    partial Spearman given `control` (None: no partial; the control itself gets none)."""
    y = column(scores, target)
    finite = y[np.isfinite(y)]
    binary = bool(finite.size) and set(np.unique(finite).tolist()) <= {0.0, 1.0}
    groups = np.array([str(s.get(group_key, i)) for i, s in enumerate(scores)], dtype=object)
    z = column(scores, control) if control else None
    out = []
    for name in signals:
        x = column(scores, name)
        if not np.isfinite(x).any():
            continue
        partial_z = z if z is not None and name != control else None
        out.append({"signal": name, "binary": binary, **signal_row(x, y, partial_z, groups, binary, n_boot, seed)})
    return out


def cell(row: Mapping[str, Any], name: str) -> str:
    """'+0.24 [+0.12, +0.35]' (AUC as 0.61 [0.41, 0.77]); '—' when absent or NaN."""
    value = row.get(name, math.nan)
    if not isinstance(value, float) or math.isnan(value):
        return "—"
    fmt = "{:.2f}" if name == "auc" else "{:+.2f}"
    low, high = row[f"{name}_low"], row[f"{name}_high"]
    bounds = "" if math.isnan(low) else f" [{fmt.format(low)}, {fmt.format(high)}]"
    return fmt.format(value) + bounds
