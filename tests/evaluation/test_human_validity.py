"""Human-label validity of the attention reward: AUC and its cluster bootstrap, the labelled-reply reader,
scoring both versions from one capture (both model kinds), and the calibration's fit and held-out report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from cagsr.attention.config import AttentionConfig
from cagsr.data.taskmaster import read_labelled_replies, sample_per_label
from cagsr.errors import DataError
from cagsr.evaluation.analysis.calibrate import calibrate, split_groups
from cagsr.evaluation.analysis.human_validity import TAU_GRID, auc_table, holds, score_replies
from cagsr.evaluation.analysis.validity import auc, auc_ci
from cagsr.reward.config import RewardConfig
from cagsr.salience.masks import Salience


def test_auc_hand_values():
    assert auc(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 0, 1, 1])) == 1.0
    assert auc(np.array([4.0, 3.0, 2.0, 1.0]), np.array([0, 0, 1, 1])) == 0.0
    # Pairs (good, bad): (2>1) (2<3) (4>1) (4>3) -> 3 of 4; a tie counts half.
    assert auc(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 1, 0, 1])) == 0.75
    assert auc(np.array([1.0, 1.0]), np.array([0, 1])) == 0.5
    assert math.isnan(auc(np.array([1.0, 2.0]), np.array([1, 1])))


def test_auc_ci_brackets_the_estimate_and_resamples_whole_groups():
    rng = np.random.default_rng(0)
    labels = np.array([1] * 60 + [0] * 40)
    scores = labels + rng.normal(0, 1.0, 100)
    value, low, high = auc_ci(scores, labels, n_boot=300)
    assert low < value < high and 0.6 < value < 0.9
    # One group per label: every resample draws groups whole, so it holds both labels or one (then NaN).
    groups = ["a" if y else "b" for y in labels]
    _, g_low, g_high = auc_ci(scores, labels, groups, n_boot=50)
    assert g_low == pytest.approx(value) and g_high == pytest.approx(value)


def test_holds_reads_the_expected_direction():
    assert holds(0.7, 0.6, 0.8, 1) == "yes"
    assert holds(0.3, 0.2, 0.4, -1) == "yes"
    assert holds(0.3, 0.2, 0.4, 1) == "no (reversed)"
    assert holds(0.55, 0.45, 0.65, 1) == "not significant"
    assert holds(0.7, 0.6, 0.8, 0) == "—"


def _write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_reader_keeps_text_replies_and_puts_api_results_on_the_user_side(tmp_path):
    context = [{"role": "agent", "text": "Welcome!"}, {"role": "user", "text": "a latte"},
               {"role": "agent", "api": {"get_menu_items": {"query": "latte"}}},
               {"role": "api", "response": {"get_menu_items": {"items": [{"name": "Latte"}]}}}]
    _write_rows(tmp_path / "r.jsonl", [
        {"id": "x", "context": context, "generation": {"role": "agent", "text": "One latte?"}, "reward": 1},
        {"id": "y", "context": context, "generation": {"role": "agent", "api": {"f": {}}}, "reward": 1},
        {"id": "z", "context": context[:2], "generation": {"role": "agent", "text": "Sure."}, "reward": 0}])
    replies, skipped = read_labelled_replies(tmp_path / "r.jsonl")
    assert skipped == 1 and [r.label for r in replies] == [1.0, 0.0]
    turns = replies[0].dialogue.turns
    assert [u.role for u in turns] == ["agent", "user", "agent", "user", "agent"]
    assert turns[3].text.startswith("[api result] get_menu_items") and turns[-1].text == "One latte?"
    assert replies[0].turn == 2 and replies[1].turn == 1
    assert len(sample_per_label(replies * 3, 2, seed=0)) == 4


def test_reader_names_file_and_line_of_a_bad_row(tmp_path):
    path = tmp_path / "bad.jsonl"
    _write_rows(path, [{"context": [], "generation": {"role": "agent", "text": "hi"}, "reward": 0.5}])
    with pytest.raises(DataError, match=r"bad.jsonl:1: 'reward' must be 0 or 1"):
        read_labelled_replies(path)


@pytest.mark.parametrize("model_name", ["tiny_llama", "tiny_t5"])
def test_both_versions_scored_from_one_capture(model_name, request, shared_data):
    torch.set_num_threads(1)
    loaded = request.getfixturevalue(model_name)
    replies, _ = read_labelled_replies(shared_data / "taskmaster4_reward.jsonl", limit=10)
    salience = Salience.fit([u.text for r in replies for u in r.dialogue.turns], "idf", 0.7)
    scores = score_replies(replies, loaded, salience, AttentionConfig(), RewardConfig(), max_context=256,
                           batch_rows=4)
    assert len(scores) == 10
    for row in scores:
        assert row["content/repetition"] == row["all/repetition"]
        if not loaded.is_encoder_decoder:  # the decoder-only default counts the first token as a sink
            assert 0 <= row["first_mass"] <= row["all/sink_mass"] + 1e-6
        assert row["content/coverage"] >= row["all/coverage"] - 1e-5
        for version in ("all", "content"):
            # Clamping at a floor can only lower focus; no floor gives minus the entropy.
            assert row[f"{version}/focus@-inf"] == pytest.approx(-row[f"{version}/entropy"], abs=1e-5)
            assert row[f"{version}/focus@3"] <= row[f"{version}/focus@0"] + 1e-6
    table = auc_table(scores, n_boot=20)
    assert {(r["version"], r["component"]) for r in table} >= {("all", "reward"), ("content", "reward"),
                                                               ("all", "first_mass")}


def _synthetic_scores(n_groups: int = 80, seed: int = 0) -> list[dict]:
    """Rows where content coverage separates good from bad and every other column is noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        for k in range(3):
            label = float(rng.random() < 0.6)
            row = {"id": f"{g}-{k}", "label": label, "group": f"g{g}", "turn": k}
            for version in ("all", "content"):
                signal = label if version == "content" else 0.0
                row[f"{version}/coverage"] = signal + rng.normal(0, 0.3)
                row[f"{version}/repetition"] = rng.random()
                row[f"{version}/reward"] = rng.normal()
                for tau0 in TAU_GRID:
                    row[f"{version}/focus@{tau0:g}"] = -abs(rng.normal(3, 0.5))
            rows.append(row)
    return rows


def test_calibration_finds_the_signal_and_reports_it_held_out():
    result = calibrate(_synthetic_scores(), holdout=0.5, seed=0, n_boot=100)
    w, h = result["weights"], result["heldout"]
    assert w["history_tokens"] == "content" and w["alpha"] > 0
    assert h["calibrated"]["auc"] > 0.9 and h["calibrated - default (all)"]["low"] > 0
    assert result["fit_replies"] + h["replies"] == 240


def test_split_groups_keeps_every_group_on_one_side():
    groups = [f"g{i // 3}" for i in range(30)]
    fit, held = split_groups(groups, 0.5, seed=1)
    assert sorted([*fit, *held]) == list(range(30))
    assert not {groups[i] for i in fit} & {groups[i] for i in held}
