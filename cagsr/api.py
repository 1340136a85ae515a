"""The Python API: train a job, score recorded data, evaluate a model; the same jobs as the commands.

    import cagsr.api as cagsr

    result = cagsr.train("dialogue", {"ppo.iterations": 4, "run.output_dir": "runs/mine"})
    result.run_dir, result.history[-1]["reward/turn_reward"]

    rows = cagsr.score(model=result.run_dir, data="../shared/data/star_dialogues.jsonl", overrides={"data.limit": 8})
    report = cagsr.evaluate(model=result.run_dir, data="generated:math", overrides={"max_records": 8})
    report.summary["accuracy"], report.rows[0]

Every function takes a job as the commands build it: `config` is a job object (TrainJob, RewardJob,
EvalJob), a preset name or YAML file, or a nested dict; `overrides` are dotted keys, one per CLI flag
(`{"reward.parts": ["attention", "0.5*my_rewards.py:politeness"]}` is `--reward.parts ...`); `model`
and `data` set model.name and data.path. A bad value is a `cagsr.errors.ConfigError` (or another
CagsrError) with the one line the CLI would print. Plugins (rewards, user simulators, salience sources
by import path) work here as on the command line; a function object is not a config value, so name it
by `module:function` or `file.py:function`.

Shapes and keys of what comes back: `train` -> TrainResult (run_dir, history: one metrics dict per
iteration, `reward/<part>` for each part of a combined reward); `score` -> one dict per agent turn
(coverage, entropy, focus, repetition, reward, history mass, salient words), as `cagsr reward` prints;
`evaluate` -> EvalReport (summary: means of every metric; rows: one per turn or solution), as
`cagsr eval` computes it (nothing is written: save what you need). A run folder as `model` is scored with
the run's own reward (RUN/reward.yaml) unless `{"reward_from": "settings"}`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cagsr.config import from_dict, load_job, load_saved_job, set_dotted, to_dict
from cagsr.errors import ConfigError
from cagsr.evaluation.job import EvalJob, run_eval
from cagsr.ppo.config import TrainJob
from cagsr.ppo.heldout import heldout_rows, saved_train_job
from cagsr.scoring.job import RewardJob, score_job

if TYPE_CHECKING:
    from cagsr.evaluation.runner import EvalReport
    from cagsr.ppo.trainer import TrainResult

__all__ = ["EvalJob", "RewardJob", "TrainJob", "build_job", "evaluate", "job_fields", "score", "train"]

Job = TypeVar("Job")
Config = Any  # a job object, a preset name or YAML path, a nested dict, or None (the defaults)


def build_job(cls: type[Job], config: Config = None, overrides: Mapping[str, Any] | None = None,
              model: str | Path | None = None, data: str | Path | None = None) -> Job:
    """A validated job of type cls: config <- overrides (dotted keys) <- model / data.

    >>> build_job(TrainJob, "tiny", {"ppo.iterations": 1}, data="generated:math").data.path
    'generated:math'
    """
    extra = dict(overrides or {})
    if model is not None:
        extra["model.name"] = str(model)
    if data is not None:
        extra["data.path"] = str(data)
    if config is None or isinstance(config, str | Path):
        return load_job(cls, config, extra)
    if isinstance(config, cls):
        base = to_dict(config)
    elif isinstance(config, Mapping):
        base = dict(config)
    else:
        raise ConfigError(f"config: expected a {cls.__name__}, a preset name or YAML path, or a dict; "
                          f"got {type(config).__name__}")
    for key, value in extra.items():
        set_dotted(base, key, value)
    return from_dict(cls, base)


def _threads(job) -> None:
    threads = getattr(getattr(job, "run", None), "threads", None)
    if threads:
        import torch

        torch.set_num_threads(threads)


def train(config: Config = None, overrides: Mapping[str, Any] | None = None, *, model: str | Path | None = None,
          data: str | Path | None = None, resume: str | Path | None = None) -> TrainResult:
    """`cagsr train`: PPO with the configured reward; writes the run folder (the same files as the command:
    the held-out evaluation before the first update, table.md with the before/after metrics and replies,
    report.html) and returns its metrics, table and replies.

    resume: a run folder to continue from its newest good checkpoint (its saved config is used).
    """
    from cagsr.ppo.train_job import run_train

    if resume is not None:
        saved = Path(resume) / "config.yaml"
        if not saved.exists():
            raise ConfigError(f"{resume}: not a cagsr run folder (no config.yaml)")
        job = load_saved_job(TrainJob, saved, dict(overrides or {}))
    else:
        job = build_job(TrainJob, config, overrides, model, data)
    return run_train(job, Path(resume) if resume is not None else None)


def score(config: Config = None, overrides: Mapping[str, Any] | None = None, *, model: str | Path | None = None,
          data: str | Path | None = None) -> list[dict]:
    """`cagsr reward`: the attention-reward components of every agent turn of recorded data under a model.

    With `plot` set (a folder) the first `plot_episodes` episodes' heatmaps are drawn there too.
    """
    job = build_job(RewardJob, config, overrides, model, data)
    _threads(job)
    return score_job(job, saved_job=saved_train_job(Path(str(job.model.name))), heldout=heldout_rows)[0]


def evaluate(config: Config = None, overrides: Mapping[str, Any] | None = None, *,
             model: str | Path | None = None, data: str | Path | None = None) -> EvalReport:
    """`cagsr eval`: generate on the validation split and compute every metric that applies to the data."""
    job = build_job(EvalJob, config, overrides, model, data)
    _threads(job)
    return run_eval(job)


def job_fields(cls: type) -> list[str]:
    """Every dotted key `overrides` accepts for a job class (the CLI flags without the dashes).

    >>> "reward.parts" in job_fields(TrainJob) and "max_records" in job_fields(EvalJob)
    True
    """
    from cagsr.config import iter_fields

    return [key for key, *_ in iter_fields(cls)] if dataclasses.is_dataclass(cls) else []
