"""Smoke run: `cagsr heads` -> `cagsr calibrate --mode head_probe` on a rated file made here -> `cagsr train` on
the written preset with the retrieval heads as attention.heads; one-line errors on bad settings."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import yaml

from cagsr.reward.definition import RewardDefinition


def cagsr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cagsr", *args, "--run.threads", "1"], capture_output=True,
                          text=True, timeout=600)


def rated_file(path, contexts: int = 12, replies: int = 3) -> None:
    """Rated replies in the ratings README format: `replies` systems answer each of `contexts` contexts."""
    rng = random.Random(0)
    words = ["pizza", "train", "guitar", "garden", "museum", "coffee", "soccer", "novel", "river", "piano", "winter", "recipe"]
    rows = []
    for c in range(contexts):
        turns = [{"role": "user", "text": f"I love {rng.choice(words)} and {rng.choice(words)}."},
                 {"role": "agent", "text": f"Do you like {rng.choice(words)}?"},
                 {"role": "user", "text": f"Yes, mostly {rng.choice(words)} on weekends."}]
        for r in range(replies):
            reply = " ".join(rng.choice(words) for _ in range(rng.randint(2, 9)))
            rows.append({"id": f"t-{c}-{r}", "turns": [*turns, {"role": "agent", "text": reply}],
                         "scores": {"overall": rng.uniform(1, 5)}, "meta": {"model": ["a", "b", "gold"][r]}})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_heads_calibrate_and_train_on_the_head_probe_preset(tmp_path):
    out = cagsr("heads", "--model", "tiny-llama", "--top", "2", "--task.examples", "2", "--task.history_tokens", "40",
                "--output-dir", str(tmp_path / "h"))
    assert out.returncode == 0, out.stderr
    heads = json.loads(out.stdout)["heads"]
    assert len(heads.split(",")) == 2
    data = tmp_path / "rated.jsonl"
    rated_file(data)
    preset = tmp_path / "probe.yaml"
    out = cagsr("calibrate", "--mode", "head_probe", "--model", "tiny-llama", "--data", str(data),
                "--probe.exclude_models", "gold", "--probe.features", "lookback,entropy", "--attention.heads", heads,
                "--probe.sizes", "8,12", "--probe.repeats", "2", "--probe.fit_labels", "12", "--boot", "20",
                "--base-preset", "tiny", "--preset-out", str(preset), "--output-dir", str(tmp_path / "c"))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["replies"] == 24 and [c["labels"] for c in result["curve"]] == [8, 12]
    assert {"all/reward", "retrieval/reward", "mean_lookback"} <= set(result["signals"])
    written = yaml.safe_load(preset.read_text())
    probe = written["reward"]["head_probe"]
    assert written["reward"]["kind"] == "head_probe" and probe["features"] == ["lookback", "entropy"]
    assert len(probe["weights"]) == 2 * len(probe["heads"].split(","))
    assert "| transfer" not in (tmp_path / "c" / "head-probe.md").read_text()
    out = cagsr("train", "--config", str(preset), "--iterations", "1", "--attention.heads", heads,
                "--output-dir", str(tmp_path / "ppo"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1])["iterations"] == 1
    saved = yaml.safe_load((tmp_path / "ppo" / "config.yaml").read_text())
    assert saved["reward"]["kind"] == "head_probe" and saved["attention"]["heads"] == heads
    # The run's reward definition carries the probe and the heads, so every command that reads the run scores it.
    definition = RewardDefinition.load(tmp_path / "ppo")
    assert definition.terms.head_probe.weights == probe["weights"] and definition.attention.heads == heads
    assert [p.spec for p in definition.parts] == ["head_probe"]


def test_bad_head_settings_are_one_line_errors(tmp_path):
    out = cagsr("train", "--config", "tiny", "--attention.heads", "9.0", "--output-dir", str(tmp_path / "a"))
    assert out.returncode == 2 and "attention.heads: head 9.0 is outside the model" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = cagsr("train", "--config", "tiny", "--reward.kind", "head_probe", "--output-dir", str(tmp_path / "b"))
    assert out.returncode == 2 and "needs a fitted probe" in out.stderr
