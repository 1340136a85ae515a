"""The one percentile bootstrap every table uses: resample items with replacement, take quantiles.

    mean, low, high = bootstrap_mean(values)                       # a run's before/after table
    change = bootstrap_change(before, after, paired=True)          # after - before, paired by item
    low, high = percentile_interval(statistic_per_resample)        # rho, AUC: any statistic
    for index in resample_indices(n):  ...                          # [RESAMPLES, n] item indices
    for index in cluster_resamples(groups):  ...                    # whole groups (dialogues) at a time

All draw from numpy's default_rng(seed), so a table rendered again from the same values gives the same
intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


def resample_indices(n: int, n_boot: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """[n_boot, n] item indices drawn with replacement."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def cluster_resamples(groups: Sequence[Any], n_boot: int = 1000, seed: int = 0) -> list[np.ndarray]:
    """n_boot index arrays, each drawing whole groups with replacement (a cluster bootstrap: the rows of
    one dialogue are not independent). groups: [n], one label per row."""
    _, cluster = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    members = [np.flatnonzero(cluster == c) for c in range(cluster.max() + 1)]
    rng = np.random.default_rng(seed)
    return [np.concatenate([members[c] for c in rng.integers(0, len(members), len(members))])
            for _ in range(n_boot)]


def _quantiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return float(low), float(high)


def percentile_interval(values: Sequence[float] | np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The (1-level)/2 and (1+level)/2 quantiles of the finite values (NaN, NaN when none are): the
    interval of a statistic over resamples, some of which may leave it undefined (a constant resample)."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return _quantiles(finite, level) if finite.size else (math.nan, math.nan)


def bootstrap_mean(values: Sequence[float] | np.ndarray, n_boot: int = RESAMPLES, level: float = LEVEL,
                   seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap interval of the mean; (v, v, v) for one value, NaNs for none.

    >>> bootstrap_mean([1.0, 1.0, 1.0])
    (1.0, 1.0, 1.0)
    """
    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return (float(data.mean()),) * 3 if data.size else (math.nan,) * 3
    means = data[resample_indices(data.size, n_boot, seed)].mean(axis=1)
    return (float(data.mean()), *_quantiles(means, level))


def bootstrap_change(before: Sequence[float], after: Sequence[float], paired: bool, n_boot: int = RESAMPLES,
                     level: float = LEVEL, seed: int = 0) -> tuple[float, float, float]:
    """mean(after) - mean(before) with its interval: per-item differences resampled together when paired
    (the same items in the same order), else the two means resampled apart."""
    a, b = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if not a.size or not b.size:
        return (math.nan,) * 3
    if paired:
        index = resample_indices(a.size, n_boot, seed)
        samples = (b[index] - a[index]).mean(axis=1)
    else:
        rng = np.random.default_rng(seed)
        samples = b[rng.integers(0, b.size, (n_boot, b.size))].mean(1) - a[rng.integers(0, a.size, (n_boot, a.size))
                                                                         ].mean(1)
    return (float(b.mean() - a.mean()), *_quantiles(samples, level))
