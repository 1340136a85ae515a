"""Keys that moved or went away: one line naming the new key (config and flag), and run folders saved under
the old names still read (resume, `cagsr reward --heldout`)."""

import dataclasses

import pytest
import yaml

from cagsr.cli.args import JobParser, add_job_args, parse_job
from cagsr.config import REMOVED, RENAMED, iter_fields, load_job, load_saved_job, set_dotted, to_dict
from cagsr.errors import ConfigError
from cagsr.ppo.config import TrainJob


def train_parser() -> JobParser:
    parser = JobParser(prog="cagsr train", description=TrainJob.__doc__)
    add_job_args(parser, TrainJob)
    return parser


def nested(dotted: str, value) -> dict:
    data: dict = {}
    set_dotted(data, dotted, value)
    return data


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_a_renamed_key_is_one_line_naming_the_new_key(tmp_path, old):
    preset = tmp_path / "old.yaml"
    preset.write_text(yaml.safe_dump(nested(old, 1)))
    with pytest.raises(ConfigError) as info:
        load_job(TrainJob, preset, {})
    assert str(info.value) == f"{preset}: {old} is now {RENAMED[old]}: rename it in your config or flags"
    with pytest.raises(ConfigError) as info:
        parse_job(train_parser(), TrainJob, [f"--{old}", "1"])
    assert str(info.value) == f"--{old} is now --{RENAMED[old]}"


@pytest.mark.parametrize("key", ["rollout.sampling.num_candidates", "ppo.lora_dropout"])
def test_a_removed_key_is_refused_with_its_reason(tmp_path, key):
    reason = REMOVED[key]
    preset = tmp_path / "old.yaml"
    preset.write_text(yaml.safe_dump(nested(key, 4)))
    with pytest.raises(ConfigError) as info:
        load_job(TrainJob, preset, {})
    assert str(info.value) == f"{preset}: {key} was removed: {reason}" and "\n" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_job(train_parser(), TrainJob, [f"--{key}", "4"])
    assert str(info.value) == f"--{key} was removed: {reason}"


def test_an_old_run_folder_config_is_read_with_the_keys_moved(tmp_path, capsys):
    """A config.yaml written before the optimizer, lora and heldout sections (and every earlier rename):
    read back, it is the job that wrote it."""
    job = TrainJob()
    job.optimizer = dataclasses.replace(job.optimizer, lr=3e-4, schedule="cosine", warmup_iterations=2)
    job.lora = dataclasses.replace(job.lora, r=8, alpha=32)
    job.heldout = dataclasses.replace(job.heldout, every=3, episodes=5, samples=1, replies=1)
    job.scoring = dataclasses.replace(job.scoring, onednn_weights=False)
    old = to_dict(job)
    for before, now in RENAMED.items():
        section, leaf = now.split(".")
        set_dotted(old, before, old[section].pop(leaf))
    del old["heldout"]["replies"]  # heldout.samples set both before the split, so replies reads it back
    for section in ("optimizer", "lora", "heldout"):
        assert not old.pop(section)  # every key of the new sections came from ppo
    old["rollout"]["sampling"]["num_candidates"] = 1
    saved = tmp_path / "config.yaml"
    saved.write_text(yaml.safe_dump(old, sort_keys=False))
    assert load_saved_job(TrainJob, saved, {}) == job
    notice = capsys.readouterr().err
    assert "ppo.lr -> optimizer.lr" in notice and "scoring.packed_weights -> scoring.onednn_weights" in notice
    assert notice.count("\n") == 1
    resumed = load_saved_job(TrainJob, saved, {"optimizer.lr": 1e-5})  # api.train(resume=...) overrides
    assert resumed.optimizer.lr == 1e-5 and resumed.lora.r == 8


def test_train_help_lists_the_new_sections_and_not_the_old_keys():
    text = train_parser().format_help()
    for section in ("optimizer:", "lora:", "heldout:"):
        assert f"\n{section}\n" in text
    for flag in ("--optimizer.lr", "--optimizer.critic_lr", "--optimizer.grad_clip", "--optimizer.schedule",
                 "--optimizer.warmup_iterations", "--lora.r", "--lora.alpha", "--heldout.every",
                 "--heldout.episodes", "--heldout.samples", "--scoring.onednn_weights"):
        assert flag in text, flag
    for old in [*RENAMED, *REMOVED]:
        assert f"--{old} " not in text and f"--{old}\n" not in text, old


def test_every_train_setting_has_help_text():
    assert [key for key, _, _, doc in iter_fields(TrainJob) if not doc] == []


def test_a_head_probes_fitted_numbers_are_yaml_only(tmp_path):
    text = train_parser().format_help()
    assert "--reward.head_probe.heads" in text
    for fitted in ("weights", "bias", "mean", "scale"):
        assert f"--reward.head_probe.{fitted}" not in text
    preset = tmp_path / "probe.yaml"
    preset.write_text(yaml.safe_dump({"reward": {"kind": "head_probe", "head_probe": {
        "heads": "0.0,0.1", "weights": [0.5, -0.5], "mean": [0.1, 0.2], "scale": [1.0, 2.0], "bias": 0.3}}}))
    job = load_job(TrainJob, preset, {})
    assert job.reward.head_probe.weights == [0.5, -0.5] and job.reward.head_probe.bias == 0.3
