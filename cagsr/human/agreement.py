"""Krippendorff's alpha for inter-rater agreement, pure numpy (nominal, ordinal, interval, ratio).

    alpha = krippendorff_alpha([[1, 2, np.nan], [1, 3, 2]], level="ordinal")   # raters x items

Follows Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": build the coincidence
matrix o[c, k] (each unit with m >= 2 values adds every ordered pair of values from different
raters with weight 1 / (m - 1)), then alpha = 1 - D_o / D_e with
    D_o = sum_ck o[c, k] * delta2(c, k) / n,   D_e = sum_ck n_c * n_k * delta2(c, k) / (n * (n - 1)).
Units rated by fewer than two raters do not count. Ordinal distance uses the marginal counts:
delta2(c, k) = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

LEVELS = ("nominal", "ordinal", "interval", "ratio")


def coincidence_matrix(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, coincidence matrix) of a raters x units array with NaN for missing."""
    values = np.unique(data[np.isfinite(data)])
    o = np.zeros((len(values), len(values)))
    for unit in data.T:
        rated = unit[np.isfinite(unit)]
        m = len(rated)
        if m < 2:
            continue
        counts = np.array([(rated == v).sum() for v in values], dtype=float)
        o += (np.outer(counts, counts) - np.diag(counts)) / (m - 1)
    return values, o


def distance(values: np.ndarray, marginals: np.ndarray, level: str) -> np.ndarray:
    """delta^2 between every pair of values for a level of measurement."""
    c, k = np.meshgrid(values, values, indexing="ij")
    if level == "nominal":
        return (c != k).astype(float)
    if level == "interval":
        return (c - k) ** 2
    if level == "ratio":
        with np.errstate(invalid="ignore", divide="ignore"):
            out = ((c - k) / (c + k)) ** 2
        return np.nan_to_num(out)
    if level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(marginals)])
        i, j = np.meshgrid(np.arange(len(values)), np.arange(len(values)), indexing="ij")
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        between = cum[hi + 1] - cum[lo]  # sum of n_g for g from the lower to the higher value
        return (between - (marginals[i] + marginals[j]) / 2) ** 2
    raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")


def krippendorff_alpha(data: Sequence[Sequence[float]] | np.ndarray, level: str = "interval") -> float:
    """Alpha of a raters x units table (NaN = not rated); nan when there is no variation to compare."""
    table = np.asarray(data, dtype=float)
    if table.ndim != 2:
        raise ValueError(f"expected a raters x units table, got shape {table.shape}")
    values, o = coincidence_matrix(table)
    marginals = o.sum(axis=1)
    n = marginals.sum()
    if n <= 1 or len(values) < 2:
        return math.nan
    delta = distance(values, marginals, level)
    observed = (o * delta).sum() / n
    expected = (np.outer(marginals, marginals) * delta).sum() / (n * (n - 1))
    return math.nan if expected == 0 else float(1.0 - observed / expected)
