"""Fit the attention reward's weights, signs and entropy floor to labelled replies; check them held out.

    result = calibrate(scores, holdout=0.5, seed=0)    # scores: rows of human_validity.score_replies
    result["weights"]   # {'history_tokens': 'content', 'tau0': 1.5, 'alpha': ..., 'beta': ..., 'gamma': ...}
    result["heldout"]   # AUC [95% CI] of the calibrated reward and of the paper's defaults, same replies

The dialogues are split in two (no dialogue on both sides). On the fitting side, for each version
(all / content history tokens) and each floor tau0 of the grid the three components (coverage C, focus
F at that floor, repetition P) are standardised and a class-balanced L2 logistic regression is fitted;
the version and floor with the best grouped cross-validated AUC win and are refitted on the whole fitting
side. The coefficients become alpha, beta and -gamma on the components' own scale (any sign: a component
that marks bad replies gets a negative weight), rescaled so the calibrated reward has the spread of the
default reward on the fitting side (the KL penalty and the clip range see rewards of the usual size).
Only the held-out side measures the result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from cagsr.evaluation.analysis.bootstrap import cluster_resamples, percentile_interval
from cagsr.evaluation.analysis.human_validity import TAU_GRID, VERSIONS, auc_table
from cagsr.evaluation.analysis.validity import auc, auc_ci, column

FOLDS = 5


def split_groups(groups: Sequence[Any], holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (fit, held out): a random share `holdout` of the groups is held out."""
    names = sorted({str(g) for g in groups})
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(names)[: max(1, round(holdout * len(names)))].tolist())
    mask = np.array([str(g) in held for g in groups])
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def features(scores: Sequence[dict], version: str, tau0: float) -> np.ndarray:
    """[n, 3]: coverage, focus at floor tau0, repetition of each reply under one version."""
    return np.stack([column(scores, f"{version}/coverage"), column(scores, f"{version}/focus@{tau0:g}"),
                     column(scores, f"{version}/repetition")], axis=1)


def fit_weights(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[3] weights on the raw components from a logistic fit on standardised ones (x [n, 3], y [n])."""
    scale = x.std(0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    model.fit((x - x.mean(0)) / scale, y)
    return model.coef_[0] / scale


def cv_auc(x: np.ndarray, y: np.ndarray, groups: Sequence[Any], seed: int) -> float:
    """Grouped k-fold AUC of the fitted weights: the score of a (version, floor) candidate."""
    names = sorted({str(g) for g in groups})
    fold_of = dict(zip(np.random.default_rng(seed).permutation(names), np.arange(len(names)) % FOLDS,
                       strict=True))
    fold = np.array([fold_of[str(g)] for g in groups])
    predicted = np.full(len(y), np.nan)
    for k in range(FOLDS):
        test = fold == k
        if test.any() and len(set(y[~test])) == 2:
            predicted[test] = x[test] @ fit_weights(x[~test], y[~test])
    keep = np.isfinite(predicted)
    return auc(predicted[keep], y[keep])


def default_reward(scores: Sequence[dict], version: str) -> np.ndarray:
    """[n] the paper's reward (the scored config's weights) under one version."""
    return column(scores, f"{version}/reward")


def _select(fit: list[dict], y: np.ndarray, groups: list, tau_grid: Sequence[float], seed: int) -> list[dict]:
    """Cross-validated AUC of every (version, floor) candidate on the fitting side."""
    out = []
    for version in VERSIONS:
        for tau0 in tau_grid:
            if f"{version}/focus@{tau0:g}" in fit[0]:
                out.append({"history_tokens": version, "tau0": tau0,
                            "cv_auc": cv_auc(features(fit, version, tau0), y, groups, seed)})
    if not out:
        raise ValueError("calibrate: the score rows hold no focus@TAU0 columns (score them with score_replies)")
    return out


def _compare(held: list[dict], calibrated: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    """Held-out AUC [CI] of the calibrated reward and each default, and the paired differences."""
    y = column(held, "label")
    groups = [s["group"] for s in held]
    systems = {"calibrated": calibrated, **{f"default ({v})": default_reward(held, v) for v in VERSIONS}}
    out: dict[str, Any] = {name: dict(zip(("auc", "low", "high"), auc_ci(s, y, groups, n_boot, seed), strict=True))
                           for name, s in systems.items()}
    resamples = cluster_resamples(groups, n_boot, seed)
    for version in VERSIONS:
        other = systems[f"default ({version})"]
        diffs = [auc(calibrated[i], y[i]) - auc(other[i], y[i]) for i in resamples]
        low, high = percentile_interval(diffs)
        out[f"calibrated - default ({version})"] = {"auc": auc(calibrated, y) - auc(other, y),
                                                    "low": low, "high": high}
    content, everything = systems["default (content)"], systems["default (all)"]
    diffs = [auc(content[i], y[i]) - auc(everything[i], y[i]) for i in resamples]
    out["default (content) - default (all)"] = dict(zip(("low", "high"), percentile_interval(diffs), strict=True),
                                                     auc=auc(content, y) - auc(everything, y))
    out["replies"], out["good"], out["bad"] = len(held), int((y == 1).sum()), int((y == 0).sum())
    return out


def calibrate(scores: Sequence[dict], holdout: float = 0.5, seed: int = 0, tau_grid: Sequence[float] = TAU_GRID,
              n_boot: int = 1000) -> dict[str, Any]:
    """Fit on one side of a grouped split, report on the other (see the module docstring)."""
    rows = list(scores)
    groups = [s["group"] for s in rows]
    fit_idx, held_idx = split_groups(groups, holdout, seed)
    fit, held = [rows[i] for i in fit_idx], [rows[i] for i in held_idx]
    y_fit = column(fit, "label")
    if len(set(y_fit)) < 2 or len(set(column(held, "label"))) < 2:
        raise ValueError("calibrate: both sides of the split need good and bad replies (more data or another seed)")
    candidates = _select(fit, y_fit, [groups[i] for i in fit_idx], tau_grid, seed)
    best = max(candidates, key=lambda c: -math.inf if math.isnan(c["cv_auc"]) else c["cv_auc"])
    x_fit = features(fit, best["history_tokens"], best["tau0"])
    w = fit_weights(x_fit, y_fit)
    spread = float(np.std(x_fit @ w)) or 1.0
    w = w * float(np.std(default_reward(fit, "all"))) / spread
    weights = {"history_tokens": best["history_tokens"], "tau0": best["tau0"],
               "alpha": float(w[0]), "beta": float(w[1]), "gamma": float(-w[2])}
    calibrated = features(held, best["history_tokens"], best["tau0"]) @ w
    return {"weights": weights, "candidates": candidates, "fit_replies": len(fit),
            "heldout": _compare(held, calibrated, n_boot, seed), "holdout": holdout, "seed": seed,
            "heldout_components": auc_table(held, n_boot=n_boot, seed=seed)}
