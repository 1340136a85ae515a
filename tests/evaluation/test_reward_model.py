"""Reward models on small slices: synthetic Bradley-Terry (dialogue and math), Taskmaster pointwise."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cagsr.data.labelled import LabelledResponse, PreferencePair
from cagsr.data.taskmaster import read_taskmaster_rewards
from cagsr.errors import DataError
from cagsr.evaluation.config import RewardModelConfig
from cagsr.evaluation.reward_models.model import (
    RewardModel,
    split_groups,
    train_bradley_terry,
    train_pointwise,
)
from cagsr.evaluation.reward_models.preferences import synthetic_preference_pairs

FAST = RewardModelConfig(hidden=64, epochs=40)
# A larger held-out share: these slices are small, and more held-out pairs make the accuracy less noisy.
HELD_OUT = RewardModelConfig(hidden=64, epochs=40, val_fraction=0.3, context_turns=2)


def test_split_groups_keeps_groups_together():
    groups = ["a", "a", "b", "c", "c", "d", "e"]
    train, val = split_groups(groups, 0.4, seed=0)
    assert sorted(train + val) == list(range(7))
    assert not {groups[i] for i in train} & {groups[i] for i in val}
    assert split_groups(["x", "x"], 0.5, seed=0) == ([0, 1], [])


def test_math_synthetic_preferences_are_learned(gsm8k, embedder, tmp_path):
    pairs = synthetic_preference_pairs(gsm8k[:30], seed=0)
    model, report = train_bradley_terry(pairs, HELD_OUT, seed=0, embedder=embedder)
    print("math synthetic BT:", json.dumps(report))
    assert report["pairs_val"] >= 50
    assert report["val_pairwise_accuracy"] > 0.7
    # Save, load, and score the same.
    contexts = [p.context for p in pairs[:4]]
    responses = [p.chosen for p in pairs[:4]]
    loaded = RewardModel.load(model.save(tmp_path / "rm"), embedder)
    np.testing.assert_allclose(loaded.score(contexts, responses), model.score(contexts, responses), rtol=1e-5)
    assert loaded.report == report and model.score([], []) == []


def test_dialogue_synthetic_preferences_beat_chance(star, embedder):
    # Two context turns: shorter contexts embed faster, and 100 dialogues is about the least that learns.
    pairs = synthetic_preference_pairs(star[:100], seed=0, context_turns=2)
    model, report = train_bradley_terry(pairs, HELD_OUT, seed=0, embedder=embedder)
    print("dialogue synthetic BT:", json.dumps(report))
    assert report["pairs_val"] >= 150
    assert report["val_pairwise_accuracy"] > 0.62
    assert report["train_pairwise_accuracy"] > report["val_pairwise_accuracy"]


def test_taskmaster_pointwise_trains_and_reports(shared_data, embedder):
    rows = read_taskmaster_rewards(shared_data / "taskmaster4_reward.jsonl", limit=150)
    model, report = train_pointwise(rows, FAST, seed=0, embedder=embedder)
    print("taskmaster pointwise:", json.dumps(report))
    assert report["examples_val"] > 15 and 0.7 < report["positive_share"] < 0.95
    assert 0.0 <= report["val_balanced_accuracy"] <= 1.0 and 0.0 <= report["val_auc"] <= 1.0
    assert report["train_auc"] > 0.8  # the head can fit its data
    scores = model.score([rows[0].context], [rows[0].response])
    assert len(scores) == 1 and np.isfinite(scores[0])


def test_training_input_errors(embedder):
    with pytest.raises(DataError, match="at least 2 preference pairs"):
        train_bradley_terry([PreferencePair("c", "a", "b")], FAST, embedder=embedder)
    with pytest.raises(DataError, match="both labels"):
        train_pointwise(
            [LabelledResponse("c", "r", 1.0), LabelledResponse("c", "s", 1.0)], FAST, embedder=embedder
        )


def test_load_errors(tmp_path, embedder):
    with pytest.raises(DataError, match="not a saved reward model"):
        RewardModel.load(tmp_path, embedder)
