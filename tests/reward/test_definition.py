"""One reward definition per run: built once, written to the run folder, and what `cagsr reward --model RUN` scores.

The end-to-end test trains a tiny run with non-default reward settings (salience sources and quantile, capture
layers, component weights, a second reward part) and scores its own held-out episodes again from the run
folder: the numbers equal what the run logged for them, and the command's default settings give others.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

import cagsr.api as api
from cagsr.attention.config import AttentionConfig
from cagsr.errors import ConfigError
from cagsr.reward.config import RewardConfig
from cagsr.reward.definition import FILE, IDF_FILE, RewardDefinition, define_reward, find_definition
from cagsr.salience.config import SalienceConfig

CORPUS = ["Order AB-1234 ships to Leeds on Friday", "Your refund of 42 pounds is on its way", "Hello, how can I help?"]

NON_DEFAULT = {
    "salience.sources": "idf|keywords", "salience.idf_quantile": 0.5, "attention.last_layers": 2,
    "reward.coverage_weight": 2.0, "reward.focus_weight": 0.3, "reward.repetition_weight": 0.2,
    "reward.repetition_ngram": 2, "reward.tau0": 0.5, "reward.parts": ["attention", "-0.01*length"],
}


def test_the_file_reads_back_the_same_definition_with_its_idf_table(tmp_path):
    cfg = RewardConfig(parts=["attention", "0.5*length"], repetition_weight=0.2, tau0=-math.inf, history_tokens="content")
    made = define_reward(cfg, SalienceConfig(sources="idf|keywords", keywords=["Leeds"]), AttentionConfig(window=16),
                         max_steps=6, corpus=CORPUS, encoder_decoder=False)
    made.save(tmp_path)
    text = (tmp_path / FILE).read_text()
    assert "repetition_weight: 0.2" in text and "tau0: -.inf" in text and "max_steps: 6" in text  # readable
    back = RewardDefinition.load(tmp_path)
    assert back == made and back.idf.idf == made.idf.idf and (tmp_path / IDF_FILE).is_file()
    assert back.terms.sink_tokens == "template|special|first"  # resolved for the model kind, not 'auto'
    assert [p.name for p in back.stage.parts] == ["attention", "length"]
    assert find_definition(tmp_path) == made and find_definition("tiny-llama") is None


def test_an_older_file_missing_a_field_takes_its_default_and_a_foreign_file_is_one_line(tmp_path):
    define_reward(RewardConfig(), SalienceConfig(), AttentionConfig(), max_steps=8, corpus=CORPUS,
                  encoder_decoder=True).save(tmp_path)
    path = tmp_path / FILE
    path.write_text(path.read_text().replace("max_steps: 8\n", ""))
    assert RewardDefinition.load(tmp_path).max_steps == RewardDefinition().max_steps
    path.write_text("format: something-else\n")
    with pytest.raises(ConfigError, match="not a reward definition written by cagsr"):
        RewardDefinition.load(tmp_path)


def _cli(*args):
    out = subprocess.run([sys.executable, "-m", "cagsr", *args], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.timeout(900)
def test_a_run_is_scored_with_its_own_reward_on_its_own_heldout_episodes(tmp_path):
    run = tmp_path / "run"
    api.train("tiny", {**NON_DEFAULT, "ppo.iterations": 2, "heldout.every": 1, "checkpoints.every": 1,
                       "run.output_dir": str(run), "run.threads": 1})
    torch.set_num_threads(1)
    saved = RewardDefinition.load(run)
    assert saved.attention.last_layers == 2 and saved.salience.sources == "idf|keywords"
    assert saved.terms.coverage_weight == 2.0 and [p.weight for p in saved.parts] == [1.0, -0.01]
    assert saved.max_steps == 8 and saved.idf is not None
    for folder in (run / "model", *sorted((run / "checkpoints").glob("step-*"))):
        assert RewardDefinition.load(folder) == saved, folder

    logged = [json.loads(line) for line in (run / "eval_episodes.jsonl").read_text().splitlines()]
    last = [r for r in logged if r["block"] == logged[-1]["block"]]
    assert last[0]["updates"] == 2  # the last evaluation read the final weights
    rescored = _cli("reward", "--model", str(run), "--heldout", "true", "--run.threads", "1")
    keys = ["reward", "coverage", "focus", "repetition", "entropy", "clamped_fraction", "part/attention",
            "part/length", "turn_reward"]
    assert [r["episode"] for r in rescored] == [r["episode"] for r in last]
    for mine, theirs in zip(rescored, last, strict=True):
        assert {k: mine[k] for k in keys} == {k: theirs[k] for k in keys}  # exactly the logged numbers

    defaults = _cli("reward", "--model", str(run), "--heldout", "true", "--reward-from", "settings", "--run.threads", "1")
    assert [r["reward"] for r in defaults] != [r["reward"] for r in last]
    assert all("part/length" not in r for r in defaults)  # the default reward has no second part
