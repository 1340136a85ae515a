"""The PPO trainer end to end on tiny models: parameters change, seeds reproduce, resume is exact."""

import json

import pytest
import torch

from cagsr.config import from_dict, load_job, to_dict
from cagsr.models import load_model
from cagsr.ppo.config import TrainJob
from cagsr.ppo.trainer import Trainer


def job(tmp_path, name="run", **sections):
    base = load_job(TrainJob, "tiny", {})
    overrides = {"run": {"output_dir": str(tmp_path / name), "progress": False}}
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    merged = to_dict(base)
    for section, values in overrides.items():
        merged[section] = {**merged[section], **values}
    return from_dict(TrainJob, merged)


def params(model):
    return [p.detach().clone() for p in model.parameters()]


def test_iteration_changes_policy_and_writes_run_folder(tmp_path):
    trainer = Trainer(job(tmp_path, ppo={"iterations": 1}))
    before = params(trainer.models.policy.model)
    result = trainer.train()
    after = params(trainer.models.policy.model)
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    run = result.run_dir
    for name in ("config.yaml", "metrics.jsonl", "samples.jsonl", "model/config.json"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    for key in (
        "reward/reward",
        "reward/coverage",
        "reward/focus",
        "reward/repetition",
        "policy/kl_ref",
        "policy/clip_frac",
        "loss/value",
        "value/explained_variance",
        "policy/entropy",
        "policy/response_len",
        "time/rollout",
        "time/update",
        "eval/reward",
    ):
        assert key in metrics, key
    sample = json.loads((run / "samples.jsonl").read_text().splitlines()[0])
    assert sample["turns"] and "reward" in sample["turns"][0]
    assert load_model(str(run)).model.config.model_type == "llama"


def test_same_seed_same_run(tmp_path):
    runs = [Trainer(job(tmp_path, f"r{i}", ppo={"iterations": 2})) for i in range(2)]
    results = [r.train() for r in runs]
    for a, b in zip(*(params(r.models.policy.model) for r in runs), strict=True):
        assert torch.equal(a, b)
    assert results[0].history[-1]["reward/reward"] == results[1].history[-1]["reward/reward"]


@pytest.mark.parametrize(
    "model, data",
    [("tiny-t5", "generated:dialogue"), ("tiny-t5", "generated:math"), ("tiny-llama", "generated:math")],
)
def test_both_model_kinds_train_dialogue_and_cot(tmp_path, model, data):
    trainer = Trainer(
        job(
            tmp_path,
            model={"name": model},
            data={"path": data, "num_generated": 12},
            ppo={"iterations": 1, "critic": "separate"},
            rollout={"cot_max_new_tokens": 12},
        )
    )
    before = params(trainer.models.policy.model)
    result = trainer.train()
    assert result.history[0]["reward/turns_per_episode"] >= 1
    assert any(
        not torch.equal(a, b) for a, b in zip(before, params(trainer.models.policy.model), strict=True)
    )


def test_lora_trains_adapter_and_keeps_reference(tmp_path):
    trainer = Trainer(job(tmp_path, ppo={"iterations": 1}, lora={"r": 4}))
    assert trainer.models.reference is None
    result = trainer.train()
    assert "policy/kl_ref" in result.history[0]
    assert (result.run_dir / "model" / "config.json").exists()


class StopAfter(Trainer):
    """Stops (as on SIGTERM) after `limit` iterations: the checkpoint path of a real interruption."""

    limit = 2

    def iteration(self):
        out = super().iteration()
        if self.state.iteration + 1 >= self.limit:
            self._stop_requested = True
        return out


def test_resume_matches_an_uninterrupted_run(tmp_path):
    settings = {"ppo": {"iterations": 4}, "checkpoints": {"every": 1}}
    straight = Trainer(job(tmp_path, "straight", **settings))
    straight.train()
    interrupted = StopAfter(job(tmp_path, "resumed", **settings))
    assert interrupted.train().stopped_early
    resumed = Trainer(job(tmp_path, "resumed", **settings), resume=tmp_path / "resumed")
    assert resumed.state.iteration == 2
    resumed.train()
    for a, b in zip(params(straight.models.policy.model), params(resumed.models.policy.model), strict=True):
        assert torch.equal(a, b)


def test_rollout_streams_are_per_iteration_and_per_rank():
    from cagsr.ppo.state import TrainState

    state = TrainState.fresh(seed=3, n_records=10)
    draws = {}
    for iteration in (0, 1):
        state.iteration = iteration
        for rank in (0, 1):
            draws[iteration, rank] = [state.rollout_rng(rank).random() for _ in range(3)]
            assert draws[iteration, rank] == [state.rollout_rng(rank).random() for _ in range(3)]  # resumable
    assert len({tuple(v) for v in draws.values()}) == 4  # no two (iteration, rank) share a stream


def test_sigterm_between_checkpoints_saves_and_resumes_exactly(tmp_path):
    """Stopped after iteration 2 with checkpoints.every 3: the stop itself writes the checkpoint."""
    settings = {
        "ppo": {"iterations": 3, "epochs": 1},
        "checkpoints": {"every": 3},
        "rollout": {"episodes": 2, "turns": 1},
    }
    straight = Trainer(job(tmp_path, "straight", **settings))
    straight.train()
    interrupted = StopAfter(job(tmp_path, "resumed", **settings))
    assert interrupted.train().stopped_early
    assert [p.name for p in (tmp_path / "resumed" / "checkpoints").glob("step-*")] == ["step-000002"]
    assert not (tmp_path / "resumed" / "model").exists()
    resumed = Trainer(job(tmp_path, "resumed", **settings), resume=tmp_path / "resumed")
    assert resumed.state.iteration == 2
    assert not resumed.train().stopped_early
    for a, b in zip(params(straight.models.policy.model), params(resumed.models.policy.model), strict=True):
        assert torch.equal(a, b)
