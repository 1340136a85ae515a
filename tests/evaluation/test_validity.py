"""Reward validity on synthetic rows whose correlations and trends are known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cagsr.evaluation.analysis.validity import (
    aggregate_episodes,
    reward_hacking_check,
    trend,
    validity_plot,
    validity_table,
)


def rows_with_known_relations(n_episodes: int = 40, turns: int = 3, seed: int = 0) -> list[dict]:
    """coverage drives coherence; repetition is anti-correlated with it; focus is noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n_episodes):
        level = rng.normal()
        for t in range(turns):
            coverage = level + 0.3 * rng.normal()
            rows.append(
                {
                    "episode": e,
                    "turn": t,
                    "coverage": coverage,
                    "focus": rng.normal(),
                    "repetition": -coverage + 0.1 * rng.normal(),
                    "reward": coverage - 0.5 * rng.normal(),
                    "coherence": coverage + 0.2 * rng.normal(),
                    "consistency": None if t == 0 else float(rng.random() < 0.5),
                }
            )
    return rows


def by_pair(table):
    return {(r["component"], r["metric"]): r for r in table}


def test_turn_level_correlations_have_the_known_signs():
    rows = rows_with_known_relations()
    table = by_pair(validity_table(rows, level="turn", n_boot=300))
    assert {m for _, m in table} == {"coherence", "consistency"}  # accuracy, step_correctness absent
    cov = table[("coverage", "coherence")]
    assert cov["rho"] > 0.8 and cov["low"] > 0.7 and cov["n"] == 120
    assert table[("repetition", "coherence")]["rho"] < -0.8
    focus = table[("focus", "coherence")]
    assert focus["low"] < 0 < focus["high"]
    assert table[("coverage", "consistency")]["n"] == 80  # None values dropped pair by pair


def test_episode_level_aggregates_by_mean():
    rows = rows_with_known_relations()
    episodes = aggregate_episodes(rows, ["coverage", "consistency"])
    assert len(episodes) == 40 and episodes[0]["turns"] == 3
    first = [r["coverage"] for r in rows if r["episode"] == 0]
    assert episodes[0]["coverage"] == pytest.approx(np.mean(first))
    table = by_pair(validity_table(rows, level="episode", n_boot=300))
    assert table[("coverage", "coherence")]["n"] == 40
    assert table[("coverage", "coherence")]["rho"] > 0.9  # averaging removes per-turn noise
    with pytest.raises(ValueError):
        validity_table(rows, level="dialogue")


def test_reward_hacking_check_flags_rising_reward_with_falling_quality():
    it = np.arange(30)
    rng = np.random.default_rng(0)
    hacked = [
        {
            "reward": 0.1 * i + rng.normal(0, 0.1),
            "coherence": 0.8 - 0.01 * i + rng.normal(0, 0.02),
            "consistency": 0.7 + rng.normal(0, 0.02),
        }
        for i in it
    ]
    verdict = reward_hacking_check(hacked)
    assert verdict["hacking"] and verdict["reward_rises"] and verdict["falling"] == ["coherence"]
    assert verdict["reward"]["slope"] == pytest.approx(0.1, abs=0.02)
    healthy = [
        {**row, "coherence": 0.5 + 0.01 * i + rng.normal(0, 0.02)} for i, row in zip(it, hacked, strict=True)
    ]
    assert not reward_hacking_check(healthy)["hacking"]
    assert reward_hacking_check(healthy)["reward_rises"]
    flat = [{"reward": rng.normal(), "coherence": 1.0 - 0.01 * i} for i in it]
    verdict = reward_hacking_check(flat)
    assert not verdict["hacking"] and not verdict["reward_rises"] and "does not rise" in verdict["message"]


def test_trend_edge_cases():
    assert trend([1.0, 1.0, 1.0, 1.0])["slope"] == 0.0
    assert math.isnan(trend([1.0])["slope"])
    assert trend([1.0, np.nan, 3.0, 4.0, 5.0])["n"] == 4


def test_validity_plot_writes_png(tmp_path):
    path = validity_plot(rows_with_known_relations(10), tmp_path / "plots" / "validity.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        validity_plot([{"coverage": 1.0}], tmp_path / "none.png")
