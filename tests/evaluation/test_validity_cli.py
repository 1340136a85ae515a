"""Smoke runs of `cagsr validity` -> `cagsr calibrate` -> `cagsr train` on the written preset, `cagsr reward`
with both versions, and one-line errors with exit code 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml


def cagsr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cagsr", *args, "--run.threads", "1"], capture_output=True,
                          text=True, timeout=600)


@pytest.fixture
def labelled(tmp_path, shared_data):
    """The first 60 text rows of Taskmaster-4 (both labels among them)."""
    rows = [line for line in (shared_data / "taskmaster4_reward.jsonl").read_text().splitlines()
            if '"text"' in line.split('"generation"')[1]][:60]
    path = tmp_path / "labelled.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_validity_calibrate_and_train_on_the_preset(tmp_path, labelled):
    out = cagsr("validity", "--model", "tiny-llama", "--data", str(labelled), "--max_context", "192", "--boot",
                "30", "--output-dir", str(tmp_path / "v"))
    assert out.returncode == 0, out.stderr
    table = [json.loads(line) for line in out.stdout.splitlines()]
    assert {"all/reward", "content/reward", "self_certainty", "random"} <= {r["signal"] for r in table}
    assert all(r["binary"] and "auc" in r for r in table)
    report = (tmp_path / "v" / "validity-human.md").read_text()
    assert "| content | focus |" in report and "sink tokens (template|special|first)" in report
    preset = tmp_path / "calibrated.yaml"
    out = cagsr("calibrate", "--scores", str(tmp_path / "v" / "scores.jsonl"), "--base-preset", "tiny",
                "--preset-out", str(preset), "--boot", "30", "--output-dir", str(tmp_path / "c"))
    assert out.returncode == 0, out.stderr
    written = yaml.safe_load(preset.read_text())
    assert written["model"]["name"] == "tiny-llama"
    assert set(written["reward"]) >= {"coverage_weight", "focus_weight", "repetition_weight", "tau0", "history_tokens"}
    assert "held-out AUC" in (tmp_path / "c" / "calibration.md").read_text()
    out = cagsr("train", "--config", str(preset), "--iterations", "1", "--output-dir", str(tmp_path / "ppo"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["iterations"] == 1


def test_validity_reads_a_ratings_file_and_prints_every_signal(tmp_path, shared_data):
    """FED rows (continuous overall scores): every signal with Spearman, Pearson and the length-partial figure."""
    rows = (shared_data / "ratings" / "fed_turn.jsonl").read_text().splitlines()[:24]
    path = tmp_path / "fed.jsonl"
    path.write_text("\n".join(rows) + "\n")
    out = cagsr("validity", "--model", "tiny-llama", "--data", str(path), "--aspect", "overall", "--boot", "30",
                "--attention.heads", "0.0,1.1", "--output-dir", str(tmp_path / "v"))
    assert out.returncode == 0, out.stderr
    table = {r["signal"]: r for r in map(json.loads, out.stdout.splitlines())}
    from cagsr.evaluation.analysis.signals_report import SIGNALS

    assert set(table) == set(SIGNALS)
    for name, row in table.items():
        assert not row["binary"] and row["n"] == 24 and row["contexts"] == 8  # FED rates three turns a dialogue
        assert {"spearman_low", "pearson_high"} <= set(row) and ("partial" in row) == (name != "length_tokens")
    page = (tmp_path / "v" / "validity-signals.md").read_text()
    assert "| log-prob | self_certainty |" in page and "Spearman given length_tokens" in page
    assert not (tmp_path / "v" / "validity-human.md").exists()
    scores = [json.loads(line) for line in (tmp_path / "v" / "scores.jsonl").read_text().splitlines()]
    for row in scores:  # lookback ratios: over every head, and over the two selected ones
        assert 0 <= row["mean_lookback"] <= 1 and 0 <= row["heads_lookback"] <= 1
    assert len({row["mean_lookback"] for row in scores}) > 1


def test_reward_rows_name_their_version(tmp_path):
    for version in ("all", "content"):
        out = cagsr("reward", "--model", "tiny-t5", "--data", "generated:dialogue", "--data.num_generated", "2",
                    "--reward.history_tokens", version, "--plot", str(tmp_path / version), "--plot-episodes", "1")
        assert out.returncode == 0, out.stderr
        row = json.loads(out.stdout.splitlines()[0])
        assert row["reward_version"]["history_tokens"] == version
        assert row["reward_version"]["sink_tokens"] == "template|special" and 0 <= row["sink_mass"] <= 1
        assert row["self_certainty"] > 0 and row["logprob"] < 0 and row["length_tokens"] >= 1
        assert 0 <= row["random"] < 1 and row["length_words"] == len(row["text"].split())
        assert 0 < row["mean_lookback"] <= 1  # every head's lookback ratio, from the same pass
        assert list((tmp_path / version).glob("*.png"))


@pytest.mark.parametrize("args, message", [
    (["validity", "--data", "missing.jsonl", "--model", "tiny-llama"], "missing.jsonl"),
    (["validity", "--reward.sink_tokens", "bos"], "sink_tokens: expected auto or a |-combination"),
    (["calibrate", "--scores", "missing.jsonl"], "--scores: missing.jsonl does not exist"),
    (["calibrate", "--holdout", "1.5"], "holdout"),
])
def test_bad_input_is_one_line_with_exit_code_2(args, message, tmp_path):
    out = cagsr(*args, "--output-dir", str(tmp_path / "run"))
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], out.stderr
