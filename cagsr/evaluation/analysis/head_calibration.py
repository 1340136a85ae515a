"""`cagsr calibrate --mode head_probe`: per-head features of a rated file -> a ridge probe, its learning curve,
cross-set transfer, the label-free attention signals, and the fitted probe as a reward preset section.

    result = head_probe_report(rows, heads, settings)            # rows of head_features.score_head_features
    result["curve"]      # held-out Spearman at 25, 50, 100, 150 labels, repeated splits by context
    result["probe"]      # the probe fitted on `fit_labels` replies: reward.head_probe of the preset
    result["signals"]    # label-free signals (paper reward, retrieval-head reward, lookback): rho [CI], partial
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cagsr.attention.heads import Head, format_heads, parse_heads
from cagsr.config import check_range
from cagsr.errors import ConfigError
from cagsr.evaluation.analysis.head_probe import (
    correlation,
    fit_probe,
    learning_curve,
    paired_difference,
    spearman,
    split_by_context,
    transfer,
)
from cagsr.evaluation.analysis.validity import column
from cagsr.reward.head_probe import FEATURES

PAPER = "all/reward"
"""The paper's total reward (all history tokens, last layer, every head): what label-free signals are held against."""
LABEL_FREE = ("all/reward", "content/reward", "retrieval/reward", "retrieval/coverage", "retrieval/focus",
              "all/coverage", "all/focus", "mean_lookback", "retrieval_lookback", "tokens")


@dataclass
class HeadProbeFit:
    """Settings of `cagsr calibrate --mode head_probe`."""

    aspect: str = "overall"
    """The rated aspect the probe is fitted to (a key of each row's scores)."""
    exclude_models: list[str] = field(default_factory=list)
    """Rows whose meta.model is one of these are left out (USR-PersonaChat: "Original Ground Truth", as the
    published comparison does)."""
    features: list[str] = field(default_factory=lambda: ["lookback"])
    """Per-head features of the probe: lookback, entropy, first_mass, history_mass (reward.head_probe.features)."""
    heads: str = ""
    """The probe's heads, LAYER.HEAD pairs; empty: every head of every layer."""
    scores_file: str | None = None
    """features.jsonl written by an earlier head_probe calibration (same model): skips the scoring pass."""
    transfer: str | None = None
    """features.jsonl of another rated set (same model and features): fit on all of this set, score that one."""
    sizes: list[int] = field(default_factory=lambda: [25, 50, 100, 150])
    """Label counts of the learning curve."""
    repeats: int = 20
    """Random context splits per label count."""
    fit_labels: int = 150
    """Replies the preset's probe is fitted on (whole contexts, seeded); the rest measure it."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.features) - set(FEATURES))
        if unknown or not self.features:
            raise ConfigError(f"probe.features: expected some of {', '.join(FEATURES)}, got {self.features}")
        parse_heads(self.heads, "probe.heads")
        check_range("repeats", self.repeats, low=1)
        check_range("fit_labels", self.fit_labels, low=10)


def feature_matrix(rows: Sequence[dict], all_heads: Sequence[Head], heads: Sequence[Head], kinds: Sequence[str]
                   ) -> np.ndarray:
    """[n, len(kinds) * len(heads)] feature-major (as reward.head_probe.weights)."""
    missing = [k for k in kinds if k not in rows[0]]
    if missing:
        raise ConfigError(f"probe.features: the scored rows hold no {missing[0]} lists")
    index = [list(all_heads).index(h) for h in heads]
    return np.concatenate([np.asarray([r[k] for r in rows], dtype=float)[:, index] for k in kinds], axis=1)


def _targets(rows: Sequence[dict]) -> tuple[np.ndarray, list[str], np.ndarray]:
    return column(rows, "score"), [str(r["group"]) for r in rows], column(rows, "tokens")


def head_probe_report(rows: Sequence[dict], scored_heads: Sequence[Head], fit: HeadProbeFit, seed: int = 0,
                      n_boot: int = 1000, other: Sequence[dict] | None = None) -> dict[str, Any]:
    """Learning curve, the preset's probe (fitted on fit.fit_labels replies, measured on the rest), label-free
    signals and, with `other` rows, transfer both ways."""
    heads = parse_heads(fit.heads, "probe.heads") or tuple(scored_heads)
    unknown = [h for h in heads if h not in scored_heads]
    if unknown:
        raise ConfigError(f"probe.heads: {format_heads(unknown[:3])} were not scored")
    x = feature_matrix(rows, scored_heads, heads, fit.features)
    y, groups, length = _targets(rows)
    curve = learning_curve(x, y, groups, length, fit.sizes, fit.repeats, seed)
    fit_idx, test_idx = split_by_context(groups, min(fit.fit_labels, len(y) - 10), np.random.default_rng(seed))
    probe = fit_probe(x[fit_idx], y[fit_idx], [groups[i] for i in fit_idx], seed=seed)
    held = correlation(probe.predict(x[test_idx]), y[test_idx], length[test_idx], [groups[i] for i in test_idx],
                       n_boot, seed)
    paper = column(rows, PAPER)
    signals = {key: correlation(column(rows, key), y, length, groups, n_boot, seed)
               | {"minus_paper": paired_difference(column(rows, key), paper, y, groups, n_boot, seed)}
               for key in LABEL_FREE if key in rows[0]}
    out = {"replies": len(rows), "contexts": len(set(groups)), "heads": format_heads(heads),
           "features": list(fit.features), "curve": curve, "signals": signals,
           "probe": {"heads": format_heads(heads), "features": list(fit.features),
                     "weights": [round(float(v), 6) for v in probe.weights], "bias": round(probe.bias, 6),
                     "mean": [round(float(v), 6) for v in probe.mean], "scale": [round(float(v), 6) for v in probe.scale]},
           "preset_fit": {"fit_replies": len(fit_idx), "heldout": held, "alpha": probe.alpha, "cv_rho": probe.cv_rho,
                          "fit_rho": spearman(probe.predict(x[fit_idx]), y[fit_idx])}}
    if other is not None:
        x_b = feature_matrix(other, scored_heads, heads, fit.features)
        y_b, groups_b, length_b = _targets(other)
        out["transfer"] = {"to_other": transfer(x, y, groups, x_b, y_b, groups_b, length_b, n_boot, seed),
                           "from_other": transfer(x_b, y_b, groups_b, x, y, groups, length, n_boot, seed)}
    return out


def _cell(r: dict[str, float], key: str = "rho") -> str:
    if r[key] != r[key]:
        return "—"
    low, high = r.get("low" if key == "rho" else "partial_low"), r.get("high" if key == "rho" else "partial_high")
    return f"{r[key]:+.3f} [{low:+.3f}, {high:+.3f}]"


def report_markdown(title: str, result: dict[str, Any]) -> str:
    """The result as a Markdown page (learning curve, preset probe, transfer, label-free signals)."""
    lines = [f"# {title}", "", f"{result['replies']} rated replies in {result['contexts']} contexts; probe over "
             f"{', '.join(result['features'])} of {len(parse_heads(result['heads']))} heads.", "",
             "Held-out Spearman of the ridge probe by label count (repeated splits by context; mean, sd, "
             "2.5-97.5 percentiles over repeats; partial: given reply length):", "",
             "| labels | repeats | Spearman | sd | range | partial | median alpha |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {c['labels']} | {c['repeats']} | {c['rho']:+.3f} | {c['sd']:.3f} | [{c['low']:+.3f}, {c['high']:+.3f}] "
              f"| {c['partial']:+.3f} | {c['median_alpha']:g} |" for c in result["curve"]]
    p = result["preset_fit"]
    lines += ["", f"The preset's probe: fitted on {p['fit_replies']} replies (alpha {p['alpha']:g}), on the other "
              f"contexts Spearman {_cell(p['heldout'])}, partial {_cell(p['heldout'], 'partial')}.", ""]
    if "transfer" in result:
        lines += ["| transfer (fit on all of one set) | Spearman [95% CI] | partial [95% CI] |", "|---|---|---|"]
        lines += [f"| {name} | {_cell(r)} | {_cell(r, 'partial')} |" for name, r in result["transfer"].items()]
        lines.append("")
    lines += ["Label-free signals (no labels used), Spearman with the human score, intervals over contexts:", "",
              "| signal | Spearman [95% CI] | partial given length [95% CI] | minus the paper's total [95% CI] |",
              "|---|---|---|---|"]
    for k, r in result["signals"].items():
        d = r["minus_paper"]
        lines.append(f"| {k} | {_cell(r)} | {_cell(r, 'partial')} | {d['diff']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] |")
    return "\n".join(lines) + "\n"
