import math
from dataclasses import dataclass, field
from typing import Literal

import pytest

from cagsr.cli.args import JobParser, add_job_args, parse_job
from cagsr.config import field_docs, from_dict, load_job, load_saved_job, to_dict
from cagsr.errors import ConfigError
from cagsr.ppo.config import TrainJob
from cagsr.sft.config import SFTJob


@dataclass
class Inner:
    rate: float = 0.1
    """Learning rate."""
    mode: Literal["a", "b"] = "a"
    """Mode."""
    names: list[str] = field(default_factory=list)
    """Names."""
    limit: int | None = None
    """Optional limit."""


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    """Inner section."""
    flag: bool = False
    """A flag."""


def test_field_docs_are_read_from_source():
    assert field_docs(Inner)["rate"] == "Learning rate."
    assert field_docs(Outer)["inner"] == "Inner section."


def test_every_job_field_has_a_docstring():
    from cagsr.config import iter_fields

    for job in (TrainJob, SFTJob):
        for dotted, _, _, doc in iter_fields(job):
            assert doc, f"{job.__name__}.{dotted} has no docstring"


def test_from_dict_coerces_and_validates():
    cfg = from_dict(Outer, {"inner": {"rate": "0.5", "mode": "b", "names": "x,y", "limit": "none"}, "flag": "yes"})
    assert cfg.inner.rate == 0.5 and cfg.inner.mode == "b" and cfg.inner.names == ["x", "y"]
    assert cfg.inner.limit is None and cfg.flag is True
    with pytest.raises(ConfigError, match="unknown config key 'inner.rat'"):
        from_dict(Outer, {"inner": {"rat": 1}})
    with pytest.raises(ConfigError, match="inner.mode: must be one of a, b"):
        from_dict(Outer, {"inner": {"mode": "c"}})
    with pytest.raises(ConfigError, match="inner.limit: expected an integer"):
        from_dict(Outer, {"inner": {"limit": "ten"}})


def test_range_errors_name_the_key():
    with pytest.raises(ConfigError, match="optimizer.lr: must be > 0"):
        from_dict(TrainJob, {"optimizer": {"lr": -1e-5}})
    job = from_dict(TrainJob, {"reward": {"tau0": "-inf"}})
    assert math.isinf(job.reward.tau0)


def test_cli_flags_override_presets(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("ppo: {iterations: 7}\noptimizer: {lr: 0.001}\nmodel: {name: tiny-llama}\n")
    parser = JobParser(prog="t")
    add_job_args(parser, TrainJob)
    job, _ = parse_job(parser, TrainJob, ["--config", str(preset), "--iterations", "3", "--reward.coverage_weight", "2"])
    assert job.ppo.iterations == 3 and job.optimizer.lr == 0.001 and job.reward.coverage_weight == 2.0
    assert to_dict(job)["model"]["name"] == "tiny-llama"


def test_shipped_presets_load():
    for name in ("tiny", "dialogue", "cot", "dialogue-star", "cot-gsm8k"):
        load_job(TrainJob, name, {})


def test_bad_yaml_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("ppo: {iterations: [1,\n")
    with pytest.raises(ConfigError, match="bad.yaml:.*not valid YAML"):
        load_job(TrainJob, bad, {})


def test_every_command_honours_run_threads():
    """run.threads applies when the flags are parsed, not only in the trainers that set it."""
    import torch

    from cagsr.reproduce.job import ReproduceJob

    before = torch.get_num_threads()
    parser = JobParser(prog="cagsr reproduce")
    add_job_args(parser, ReproduceJob)
    try:
        parse_job(parser, ReproduceJob, ["--run.threads", "1"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("old, new", [("reward.gamma", "reward.repetition_weight"), ("reward.n", "reward.repetition_ngram"),
                                      ("reward.salience", "salience.sources")])
def test_an_old_key_is_one_line_naming_its_new_key(tmp_path, old, new):
    section, leaf = old.split(".")
    preset = tmp_path / "old.yaml"
    preset.write_text(f"{section}: {{{leaf}: 1}}\n")
    with pytest.raises(ConfigError) as info:
        load_job(TrainJob, preset, {})
    assert str(info.value) == f"{preset}: {old} is now {new}: rename it in your config or flags"
    parser = JobParser(prog="cagsr train")
    add_job_args(parser, TrainJob)
    with pytest.raises(ConfigError) as info:
        parse_job(parser, TrainJob, [f"--{old}", "1"])
    assert str(info.value) == f"--{old} is now --{new}"


def test_a_saved_run_config_with_old_keys_is_read_with_them_moved(tmp_path, capsys):
    saved = tmp_path / "config.yaml"
    saved.write_text("reward: {gamma: 0.25, n: 2, salience: idf}\n")
    job = load_saved_job(TrainJob, saved, {})
    assert (job.reward.repetition_weight, job.reward.repetition_ngram, job.salience.sources) == (0.25, 2, "idf")
    assert "reward.gamma -> reward.repetition_weight" in capsys.readouterr().err
