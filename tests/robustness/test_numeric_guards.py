"""NaN/Inf guards: a bad batch is skipped with a warning and counted; a run that keeps producing them
stops with a clear message and no checkpoint is written from non-finite weights."""

import dataclasses
import json
import warnings

import pytest
import torch

from cagsr.cli.main import main
from cagsr.config import from_dict, load_job, to_dict
from cagsr.errors import CagsrError
from cagsr.ppo.config import TrainJob
from cagsr.ppo.state import save_state
from cagsr.ppo.trainer import Trainer
from cagsr.ppo.update import ppo_update
from cagsr.reward.registry import turn_tensor

CALLS = {"nan-first": 0}
# The rewards below, named by file path as a user would (this module is reused, so CALLS is shared).
NAN_FIRST, ALWAYS_INF = f"{__file__}:nan_first", f"{__file__}:always_inf"


def nan_first(episodes, job):
    """NaN on the first training batch only (later batches and evaluations get a finite reward)."""
    CALLS["nan-first"] += 1
    value = float("nan") if CALLS["nan-first"] == 1 else 0.5
    return turn_tensor(episodes, lambda ep, t: value)


def always_inf(episodes, job):
    return turn_tensor(episodes, lambda ep, t: float("inf"))


# Smaller than the tiny preset: these tests are about the guard, not about learning.
FAST = {"rollout": {"episodes": 2, "turns": 1}, "ppo": {"epochs": 1}, "heldout": {"episodes": 1}}
FAST_FLAGS = [
    "--rollout.episodes",
    "2",
    "--rollout.turns",
    "1",
    "--ppo.epochs",
    "1",
    "--heldout.episodes",
    "1",
]


def make_job(tmp_path, **sections):
    data = to_dict(load_job(TrainJob, "tiny", {}))
    data["run"] |= {"output_dir": str(tmp_path / "run"), "progress": False}
    for section, values in (FAST | sections).items():
        data[section] |= FAST.get(section, {}) | values
    return from_dict(TrainJob, data)


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_nan_batch_is_skipped_warned_and_counted(tmp_path):
    CALLS["nan-first"] = 0
    trainer = Trainer(
        make_job(tmp_path, reward={"kind": NAN_FIRST}, ppo={"iterations": 2}, heldout={"every": 9})
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train()
    skipped = [str(w.message) for w in caught if "batch skipped" in str(w.message)]
    assert skipped == [
        "iteration 1: reward/nan_first returned NaN for 2 of 2 turns: batch skipped (1 so far)"
    ]
    first, second = metrics(tmp_path / "run")
    assert (
        first["guard/skipped_batches"] == 1.0 and "loss/policy" not in first
    )  # no update from the bad batch
    assert second["guard/skipped_batches"] == 1.0 and "loss/policy" in second  # training went on
    assert (tmp_path / "run" / "model" / "config.json").exists()


def test_persistent_nan_stops_with_one_line_and_no_final_model(tmp_path, capsys):
    argv = [
        "train",
        "--config",
        "tiny",
        "--output-dir",
        str(tmp_path / "run"),
        "--reward.kind",
        ALWAYS_INF,
        "--ppo.max_bad_batches",
        "1",
        "--ppo.iterations",
        "6",
        "--checkpoints.every",
        "1",
        *FAST_FLAGS,
    ]
    with pytest.raises(SystemExit) as exit_info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert err == (
        "cagsr train: error: 2 batches in a row had NaN/Inf values (reward/always_inf returned Inf for 2 of 2 "
        "turns); stopping before a corrupted checkpoint is written (lower optimizer.lr or check "
        "the data and reward)"
    )
    run = tmp_path / "run"
    assert [c.name for c in sorted((run / "checkpoints").glob("step-*"))] == ["step-000001"]
    assert not (run / "model").exists()


@pytest.fixture(scope="module")
def trainer_and_batch(tmp_path_factory):
    trainer = Trainer(make_job(tmp_path_factory.mktemp("guard"), ppo={"iterations": 2}))
    exp, _ = trainer.collect({})
    return trainer, exp


def test_a_nonfinite_loss_skips_the_update(trainer_and_batch):
    trainer, exp = trainer_and_batch
    learner = trainer.models.learner
    before = [p.detach().clone() for p in learner.parameters()]
    lr_steps = learner.scheduler.last_epoch
    poisoned = exp.token_advantages.clone()
    poisoned[0, 0] = float("nan")
    bad = dataclasses.replace(exp, token_advantages=poisoned)
    stats = ppo_update(learner, bad, trainer.job.ppo, trainer.job.scoring, torch.Generator().manual_seed(0))
    assert stats["guard/nonfinite_update"] == 1.0
    assert all(torch.equal(a, b) for a, b in zip(before, learner.parameters(), strict=True))
    assert learner.scheduler.last_epoch == lr_steps
    assert all(p.grad is None for p in learner.parameters())


def test_no_checkpoint_from_nonfinite_weights(trainer_and_batch):
    trainer, _ = trainer_and_batch
    weight = next(trainer.models.policy.model.parameters())
    saved = weight.detach().clone()
    with torch.no_grad():
        weight[0, 0] = float("inf")
    try:
        with pytest.raises(CagsrError, match="NaN/Inf; not writing a checkpoint"):
            save_state(trainer)
    finally:
        with torch.no_grad():
            weight.copy_(saved)
    root = trainer.run_dir / "checkpoints"
    assert not root.exists() or not any(root.iterdir())
