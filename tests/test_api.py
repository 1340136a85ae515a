"""The Python API (cagsr.api): jobs built as the CLI builds them, and the example under examples/ runs."""

import doctest
import json
import subprocess
import sys
from pathlib import Path

import pytest

import cagsr.api as api
from cagsr.errors import ConfigError
from cagsr.ppo.config import TrainJob

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "python_api" / "train_score_evaluate.py"


def test_doctests():
    result = doctest.testmod(api)
    assert result.attempted > 0 and result.failed == 0


def test_jobs_from_presets_dicts_and_objects_agree():
    overrides = {"ppo.iterations": 2, "reward.parts": ["attention", "0.5*length"]}
    from_preset = api.build_job(TrainJob, "tiny", overrides, model="tiny-t5")
    from_object = api.build_job(TrainJob, api.build_job(TrainJob, "tiny"), overrides, model="tiny-t5")
    from_dict = api.build_job(TrainJob, {"model": {"name": "tiny-t5"}, "data": {"num_generated": 24}}, overrides)
    assert from_preset == from_object
    assert (from_preset.model.name, from_preset.ppo.iterations, from_preset.reward.parts) == \
        (from_dict.model.name, from_dict.ppo.iterations, from_dict.reward.parts) == \
        ("tiny-t5", 2, ["attention", "0.5*length"])
    assert "rollout.simulator" in api.job_fields(TrainJob)


@pytest.mark.parametrize("config, overrides, message", [
    (3, None, "config: expected a TrainJob, a preset name or YAML path, or a dict; got int"),
    ("tiny", {"ppo.nope": 1}, "ppo.nope"),
    ("no-such-preset", None, "no-such-preset: config file not found"),
])
def test_bad_jobs_are_config_errors(config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        api.build_job(TrainJob, config, overrides)


def test_resume_needs_a_run_folder(tmp_path):
    with pytest.raises(ConfigError, match="not a cagsr run folder"):
        api.train(resume=tmp_path)


def test_the_example_trains_scores_and_evaluates(tmp_path):
    out = subprocess.run([sys.executable, str(EXAMPLE), "--output-dir", str(tmp_path / "ex")], capture_output=True,
                         text=True, timeout=900, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    trained, scored, evaluated = (json.loads(line) for line in out.stdout.splitlines() if line.startswith("{"))
    for part in ("attention", "correctness", "shows_work"):  # every part of the combined reward is logged
        assert f"reward/{part}" in trained and f"eval/{part}" in trained, sorted(trained)
    assert trained["iterations"] == 1 and Path(trained["run_dir"], "model", "config.json").exists()
    assert scored["scored_turns"] > 0 and scored["mean_reward"] == scored["mean_reward"]  # finite, not NaN
    assert evaluated["n"] >= 1 and 0.0 <= evaluated["accuracy"] <= 1.0
