"""Fit and measure a ridge probe over per-head attention features of rated replies.

    probe = fit_probe(x, y, groups)                          # alpha by grouped cross-validation
    curve = learning_curve(x, y, groups, length, sizes=(25, 50, 100, 150), repeats=20)
    moved = transfer(x_a, y_a, groups_a, x_b, y_b, groups_b, length_b)

x: [n, D] features of n replies (D = heads x features), y: [n] human scores, groups: [n] context of each
reply. Every split keeps the replies of one context on one side (a context's replies share its history,
so a probe that saw one of them has seen the others' inputs), and every interval resamples contexts.
Correlations are Spearman's, each with its partial given reply length (rank residuals: length alone
correlates with human scores on these sets).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from sklearn.linear_model import Ridge

from cagsr.evaluation.analysis.bootstrap import cluster_resamples, percentile_interval

ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
FOLDS = 5


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rho of the finite pairs (NaN with fewer than 3 or a constant side)."""
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3 or np.ptp(x[keep]) == 0 or np.ptp(y[keep]) == 0:
        return math.nan
    return float(stats.spearmanr(x[keep], y[keep]).statistic)


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Spearman rho of x and y given z: Pearson of the ranks of x and y after regressing out z's ranks."""
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    if keep.sum() < 4:
        return math.nan
    rx, ry, rz = (stats.rankdata(v[keep]) for v in (x, y, z))
    design = np.stack([np.ones_like(rz), rz], 1)
    res = [r - design @ np.linalg.lstsq(design, r, rcond=None)[0] for r in (rx, ry)]
    if np.ptp(res[0]) < 1e-12 or np.ptp(res[1]) < 1e-12:
        return math.nan
    return float(np.corrcoef(res[0], res[1])[0, 1])


def correlation(score: np.ndarray, y: np.ndarray, length: np.ndarray, groups: Sequence[Any], n_boot: int = 1000,
                seed: int = 0) -> dict[str, float]:
    """Spearman and length-partial Spearman with 95% bootstrap intervals that resample contexts."""
    score, y, length = (np.asarray(v, dtype=float) for v in (score, y, length))
    draws = cluster_resamples(groups, n_boot, seed)
    rho = [spearman(score[i], y[i]) for i in draws]
    part = [partial_spearman(score[i], y[i], length[i]) for i in draws]
    (low, high), (p_low, p_high) = percentile_interval(rho), percentile_interval(part)
    return {"rho": spearman(score, y), "low": low, "high": high, "partial": partial_spearman(score, y, length),
            "partial_low": p_low, "partial_high": p_high, "n": int(np.isfinite(score).sum())}


def paired_difference(a: np.ndarray, b: np.ndarray, y: np.ndarray, groups: Sequence[Any], n_boot: int = 1000,
                      seed: int = 0) -> dict[str, float]:
    """Spearman(a, y) - Spearman(b, y) with a 95% interval from the same context resamples for both."""
    a, b, y = (np.asarray(v, dtype=float) for v in (a, b, y))
    diffs = [spearman(a[i], y[i]) - spearman(b[i], y[i]) for i in cluster_resamples(groups, n_boot, seed)]
    low, high = percentile_interval(diffs)
    return {"diff": spearman(a, y) - spearman(b, y), "low": low, "high": high}


@dataclass(kw_only=True)
class Probe:
    """A fitted ridge probe on standardised features."""

    weights: np.ndarray
    """[D] weights on the standardised features."""
    bias: float
    """Intercept."""
    mean: np.ndarray
    """[D] feature means of the fitting replies."""
    scale: np.ndarray
    """[D] feature standard deviations of the fitting replies (1 where a feature is constant)."""
    alpha: float
    """The ridge penalty chosen by grouped cross-validation."""
    cv_rho: float
    """Spearman of the out-of-fold predictions at that penalty."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """[n, D] -> [n]."""
        return ((x - self.mean) / self.scale) @ self.weights + self.bias


def group_folds(groups: Sequence[Any], folds: int, seed: int) -> np.ndarray:
    """[n] fold of each row: contexts dealt round-robin into `folds` folds in a seeded order."""
    names = sorted({str(g) for g in groups})
    order = np.random.default_rng(seed).permutation(len(names))
    fold_of = {names[j]: k % folds for k, j in enumerate(order)}
    return np.array([fold_of[str(g)] for g in groups])


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, scale = x.mean(0), x.std(0)
    return mean, np.where(scale > 1e-12, scale, 1.0)


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    mean, scale = _standardise(x)
    model = Ridge(alpha=alpha).fit((x - mean) / scale, y)
    return model.coef_, float(model.intercept_), mean, scale


def cv_predictions(x: np.ndarray, y: np.ndarray, groups: Sequence[Any], alpha: float, folds: int = FOLDS,
                   seed: int = 0) -> np.ndarray:
    """[n] out-of-fold predictions of a ridge probe, folds by context."""
    fold = group_folds(groups, min(folds, len({str(g) for g in groups})), seed)
    out = np.full(len(y), np.nan)
    for k in np.unique(fold):
        test = fold == k
        w, b, mean, scale = _ridge(x[~test], y[~test], alpha)
        out[test] = ((x[test] - mean) / scale) @ w + b
    return out


def fit_probe(x: np.ndarray, y: np.ndarray, groups: Sequence[Any], alphas: Sequence[float] = ALPHAS,
              folds: int = FOLDS, seed: int = 0) -> Probe:
    """Ridge with the penalty of the best grouped cross-validated Spearman, refitted on all rows."""
    if len({str(g) for g in groups}) < 2:
        raise ValueError("head probe: the fitting replies need at least two contexts for cross-validation")
    scored = [(spearman(cv_predictions(x, y, groups, a, folds, seed), y), a) for a in alphas]
    cv_rho, alpha = max(scored, key=lambda t: (-math.inf if math.isnan(t[0]) else t[0], -t[1]))
    w, b, mean, scale = _ridge(x, y, alpha)
    return Probe(weights=w, bias=b, mean=mean, scale=scale, alpha=alpha, cv_rho=cv_rho)


def split_by_context(groups: Sequence[Any], size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(fit, test) row indices: whole contexts in random order until `size` replies are taken (the last
    context's surplus replies are left out of both sides); every other context is the test side."""
    names = sorted({str(g) for g in groups})
    members = {n: [i for i, g in enumerate(groups) if str(g) == n] for n in names}
    fit: list[int] = []
    test: list[int] = []
    for name in rng.permutation(names):
        rows = members[name]
        if len(fit) < size:
            fit += rows[: size - len(fit)]
        else:
            test += rows
    return np.array(fit), np.array(test)


def learning_curve(x: np.ndarray, y: np.ndarray, groups: Sequence[Any], length: np.ndarray,
                   sizes: Sequence[int] = (25, 50, 100, 150), repeats: int = 20, seed: int = 0,
                   alphas: Sequence[float] = ALPHAS) -> list[dict[str, Any]]:
    """Held-out Spearman (and length-partial) of probes fitted on `size` replies, over repeated context splits:
    one row per size with the mean, standard deviation and 2.5/97.5 percentiles over the repeats."""
    out = []
    for size in sizes:
        rng = np.random.default_rng(seed + size)
        rhos, partials, alphas_used = [], [], []
        for _ in range(repeats):
            fit, test = split_by_context(groups, size, rng)
            if len(test) < 10:
                break
            probe = fit_probe(x[fit], y[fit], [groups[i] for i in fit], alphas, seed=seed)
            pred = probe.predict(x[test])
            rhos.append(spearman(pred, y[test]))
            partials.append(partial_spearman(pred, y[test], length[test]))
            alphas_used.append(probe.alpha)
        if not rhos:
            continue
        r, p = np.array(rhos), np.array(partials)
        out.append({"labels": size, "repeats": len(r), "rho": float(np.nanmean(r)), "sd": float(np.nanstd(r)),
                    "low": float(np.nanpercentile(r, 2.5)), "high": float(np.nanpercentile(r, 97.5)),
                    "partial": float(np.nanmean(p)), "partial_sd": float(np.nanstd(p)),
                    "median_alpha": float(np.median(alphas_used))})
    return out


def transfer(x_a: np.ndarray, y_a: np.ndarray, groups_a: Sequence[Any], x_b: np.ndarray, y_b: np.ndarray,
             groups_b: Sequence[Any], length_b: np.ndarray, n_boot: int = 1000, seed: int = 0,
             alphas: Sequence[float] = ALPHAS) -> dict[str, Any]:
    """Fit on all of set A, score set B: Spearman on B with intervals over B's contexts, and the penalty."""
    probe = fit_probe(x_a, y_a, groups_a, alphas, seed=seed)
    row = correlation(probe.predict(x_b), y_b, length_b, groups_b, n_boot, seed)
    return row | {"alpha": probe.alpha, "fit_replies": len(y_a), "cv_rho_on_a": probe.cv_rho}
