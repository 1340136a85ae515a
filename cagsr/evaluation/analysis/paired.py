"""Paired statistics over the same held-out items: mean differences, bootstrap intervals, verdicts.

Two systems evaluated on the same items (dialogues, math problems) give one difference per item;
resampling the items (not the turns, which are correlated within a dialogue) gives the interval.

    a = item_means(rows_a, "coherence")        # {item id: mean over its turns}
    b = item_means(rows_b, "coherence")
    ids, diffs = align(a, b)                   # a - b per shared item; the id sets must match
    interval = paired_bootstrap(diffs)         # Interval(mean, low, high, n)
    verdict(interval, direction=+1)            # 'holds' | 'not shown' | 'reversed'
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cagsr.evaluation.analysis.bootstrap import bootstrap_mean

HOLDS, NOT_SHOWN, REVERSED = "holds", "not shown", "reversed"


@dataclass(frozen=True)
class Interval:
    """Mean difference over items with a percentile bootstrap interval."""

    mean: float
    """Mean of the per-item differences."""
    low: float
    """Lower end of the interval."""
    high: float
    """Upper end of the interval."""
    n: int
    """Number of paired items."""

    def text(self, digits: int = 3) -> str:
        """'+0.012 [-0.004, +0.030]' (or '—' without items)."""
        if self.n == 0 or math.isnan(self.mean):
            return "—"
        return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def item_means(rows: Iterable[Mapping], metric: str, key: str = "episode") -> dict[str, float]:
    """Mean of `metric` per item (rows sharing `key`, e.g. the turns of one dialogue); NaNs skipped,
    items without a finite value left out.

    >>> item_means([{"episode": "a", "m": 1.0}, {"episode": "a", "m": 0.0}, {"episode": "b", "m": float("nan")}], "m")
    {'a': 0.5}
    """
    sums: dict[str, list[float]] = {}
    for row in rows:
        value = row.get(metric)
        if isinstance(value, int | float) and not math.isnan(value):
            sums.setdefault(str(row[key]), []).append(float(value))
    return {item: sum(vs) / len(vs) for item, vs in sums.items()}


def seed_average(per_seed: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per item, the mean over seeds; only items every seed has.

    >>> seed_average([{"a": 1.0, "b": 2.0}, {"a": 3.0}])
    {'a': 2.0}
    """
    if not per_seed:
        return {}
    common = set(per_seed[0]).intersection(*per_seed[1:])
    return {item: sum(s[item] for s in per_seed) / len(per_seed) for item in sorted(common)}


def align(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[list[str], np.ndarray]:
    """Items in both and a - b for each, sorted by id. Raises ValueError when the id sets differ
    (paired statistics need the same items on both sides).

    >>> align({"x": 1.0, "y": 0.5}, {"y": 0.0, "x": 0.5})
    (['x', 'y'], array([0.5, 0.5]))
    """
    if set(a) != set(b):
        only = sorted(set(a) ^ set(b))[:5]
        raise ValueError(f"paired comparison over different items (e.g. {only})")
    ids = sorted(a)
    return ids, np.array([a[i] - b[i] for i in ids], dtype=float)


def paired_bootstrap(diffs: Sequence[float] | np.ndarray, n_boot: int = 2000, level: float = 0.95,
                     seed: int = 0) -> Interval:
    """Percentile bootstrap of the mean of `diffs` [n] (analysis/bootstrap.py): resample the n items with
    replacement `n_boot` times; the interval is the (1-level)/2 and (1+level)/2 quantiles of the resampled means.

    >>> paired_bootstrap([1.0, 1.0, 1.0])
    Interval(mean=1.0, low=1.0, high=1.0, n=3)
    """
    d = np.asarray(diffs, dtype=float)
    if d.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    return Interval(*bootstrap_mean(d, n_boot, level, seed), int(d.size))


def seed_spread(values: Sequence[float]) -> float:
    """Sample standard deviation over seeds (0 for one seed, NaN for none); NaNs skipped.

    >>> seed_spread([0.1, 0.3])
    0.1414213562373095
    """
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan
    return statistics.stdev(finite) if len(finite) > 1 else 0.0


def verdict(interval: Interval, direction: int = 1, atol: float = 1e-6) -> str:
    """'holds' when the whole interval lies on the expected side of 0 (direction +1: a > b expected,
    -1: a < b expected), 'reversed' when it lies wholly on the other side, 'not shown' otherwise.
    Bounds within `atol` of 0 count as touching it (float noise of re-scoring the same text).

    >>> verdict(Interval(0.02, 0.01, 0.03, 150)), verdict(Interval(0.02, 0.01, 0.03, 150), -1)
    ('holds', 'reversed')
    """
    if interval.n == 0 or math.isnan(interval.low):
        return NOT_SHOWN
    low, high = sorted((direction * interval.low, direction * interval.high))
    if low > atol:
        return HOLDS
    if high < -atol:
        return REVERSED
    return NOT_SHOWN


@dataclass(frozen=True)
class Comparison:
    """System a against system b on one metric, over the same held-out items and several seeds."""

    interval: Interval
    """Paired bootstrap over items of the differences, averaged over the starting models both share."""
    seed_diffs: tuple[float, ...]
    """Mean difference of each seed of a that has a partner (seed s of b when both rows have the same
    seeds, else b's seeds from the same starting model, averaged)."""
    spread: float
    """Standard deviation of seed_diffs (0 with one seed)."""


def compare(a_seeds: Sequence[Mapping[str, float]], b_seeds: Sequence[Mapping[str, float]],
            n_boot: int = 2000, seed: int = 0, starts: int = 1) -> Comparison:
    """Compare two systems given per-seed item means ({item: value} per seed). Seed s started from
    model s mod `starts` (RL seed s from supervised model s): only the models both rows have are
    compared, so a one-seed row is held against its own starting point, not against other models.

    >>> a = [{"x": 1.0}]                                  # one seed, from model 0
    >>> b = [{"x": 0.0}, {"x": 4.0}]                      # models 0 and 1
    >>> compare(a, b, n_boot=10).seed_diffs, compare(a, b, n_boot=10, starts=2).seed_diffs
    ((-1.0,), (1.0,))
    """
    shared = range(min(len(a_seeds), len(b_seeds), starts))  # seeds 0..n-1 start from models 0..min(n, starts)-1

    def by_model(seeds: Sequence[Mapping[str, float]]) -> dict[int, dict[str, float]]:
        return {m: seed_average([v for s, v in enumerate(seeds) if s % starts == m]) for m in shared}

    a_models, b_models = by_model(a_seeds), by_model(b_seeds)
    per_model = [align(a_models[m], b_models[m])[1] for m in shared]
    diffs = np.mean(per_model, axis=0) if per_model else np.array([])
    seed_diffs = []
    for s, a in enumerate(a_seeds):
        if s % starts not in b_models:
            continue
        b = b_seeds[s] if len(a_seeds) == len(b_seeds) else b_models[s % starts]
        items = a_models[s % starts]
        _, d = align({i: a[i] for i in items}, {i: b[i] for i in items})
        seed_diffs.append(float(d.mean()) if d.size else math.nan)
    return Comparison(paired_bootstrap(diffs, n_boot, seed=seed), tuple(seed_diffs), seed_spread(seed_diffs))


__all__ = ["HOLDS", "NOT_SHOWN", "REVERSED", "Comparison", "Interval", "align", "compare", "item_means",
           "paired_bootstrap", "seed_average", "seed_spread", "verdict"]
