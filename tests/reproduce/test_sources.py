"""The split of a row's reward change into the reward's weighted terms."""

import json
from pathlib import Path

import pytest

from cagsr.reproduce.sources import reward_sources

RECORDS = Path(__file__).resolve().parents[2] / "docs" / "results" / "records" / "reproduce-dialogue-medium-v2"
VERSION = {"coverage_weight": 1.0, "focus_weight": 0.1, "repetition_weight": 0.5}


def turn(system, seed, coverage, focus, repetition, version=VERSION):
    weights = [version.get(k, version.get(old)) for k, old in
               (("coverage_weight", "alpha"), ("focus_weight", "beta"), ("repetition_weight", "gamma"))]
    reward = weights[0] * coverage + weights[1] * focus - weights[2] * repetition
    return {"system": system, "seed": seed, "coverage": coverage, "focus": focus, "repetition": repetition,
            "reward": reward, "reward_version": version}


def test_each_seed_is_held_against_the_no_rl_of_its_own_supervised_model():
    rows = [turn("No-RL", 0, 0.1, -2.0, 0.4), turn("No-RL", 1, 0.2, -2.0, 0.4),
            turn("A", 0, 0.1, -2.0, 0.2), turn("A", 1, 0.3, -2.0, 0.4),  # A seed 1 starts from model 1
            turn("B", 3, 0.1, -2.0, 0.0)]  # with 3 supervised models, seed 3 starts from model 0
    out = {r["system"]: r for r in reward_sources(rows, sft_seeds=3)}
    assert out["A"]["seeds"] == 2
    assert out["A"]["repetition"] == pytest.approx((0.1 + 0.0) / 2)  # -gamma * (0.2 - 0.4), then 0
    assert out["A"]["coverage"] == pytest.approx((0.0 + 0.1) / 2)
    assert out["A"]["reward"] == pytest.approx(out["A"]["coverage"] + out["A"]["focus"] + out["A"]["repetition"])
    assert out["B"]["repetition"] == pytest.approx(0.2)


def test_rows_without_reward_terms_or_a_baseline_are_left_out():
    rows = [turn("No-RL", 0, 0.1, -2.0, 0.4), {"system": "C", "seed": 0, "reward": 1.0},
            turn("D", 5, 0.1, -2.0, 0.4)]  # D seed 5 from model 2: no No-RL there
    assert reward_sources(rows, sft_seeds=3) == []


def test_the_weights_are_read_from_the_rows_under_either_name():
    other = {"alpha": 2.0, "beta": 0.0, "gamma": 1.0}  # evaluations saved before the reward's one definition
    rows = [turn("No-RL", 0, 0.1, -2.0, 0.4, other), turn("A", 0, 0.2, -1.0, 0.4, other)]
    out = reward_sources(rows, sft_seeds=1)[0]
    assert out["coverage"] == pytest.approx(0.2) and out["focus"] == 0.0


@pytest.mark.skipif(not RECORDS.exists(), reason="needs the committed dialogue records")
def test_the_terms_add_up_to_the_reward_change_on_the_records():
    rows = []
    for path in RECORDS.glob("rows/*/seed-*/eval-star.json"):
        seed = int(path.parent.name.removeprefix("seed-"))
        system = path.parent.parent.name
        rows += [{**r, "system": system, "seed": seed} for r in json.loads(path.read_text())["rows"]]
    out = reward_sources(rows, sft_seeds=3, baseline="no-rl")
    assert len(out) >= 5
    for r in out:  # the stored reward is the weighted sum of the stored terms, each rounded (~1e-6 apart)
        assert r["reward"] == pytest.approx(r["coverage"] + r["focus"] + r["repetition"], abs=1e-5), r


def test_the_plot_draws_the_present_rows_only():
    from cagsr.reproduce.sources import sources_plot

    rows = reward_sources([turn("No-RL", 0, 0.1, -2.0, 0.4), turn("A", 0, 0.1, -1.0, 0.2)], sft_seeds=1)
    assert sources_plot(rows, ["B"]) is None
    assert sources_plot(rows, ["A", "B"]).startswith(b"\x89PNG")
