"""Groups of episodes and the critic-free estimators through the trainer, on the tiny preset."""

import json

import pytest
import torch

from cagsr.config import load_job
from cagsr.errors import ConfigError
from cagsr.ppo.config import TrainJob
from cagsr.ppo.trainer import Trainer
from cagsr.ppo.update import _totals
from cagsr.scoring.rows import build_rows

CRITIC_FREE = ("grpo", "dr_grpo", "rloo", "reinforce_pp")


def tiny(tmp_path, **overrides):
    return load_job(TrainJob, "tiny", {"run.output_dir": str(tmp_path / "run"), **overrides})


@pytest.mark.parametrize("advantage", CRITIC_FREE)
def test_critic_free_estimators_train_the_tiny_preset(tmp_path, advantage):
    job = tiny(tmp_path, **{"ppo.advantage": advantage, "rollout.group_size": 2, "ppo.iterations": 2})
    trainer = Trainer(job)
    assert trainer.models.critic is None and trainer.models.learner.critic is None
    assert len(trainer.models.learner.optimizer.param_groups) == 1  # no critic parameters
    before = [p.detach().clone() for p in trainer.models.policy.model.parameters()]
    result = trainer.train()
    after = list(trainer.models.policy.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    metrics = json.loads((result.run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert metrics["batch/groups"] == 2.0  # 4 episodes in groups of 2
    assert "loss/value" not in metrics and "value/explained_variance" not in metrics
    assert "time/critic" not in metrics
    assert metrics["loss/policy"] == metrics["loss/policy"]  # finite, not NaN


def test_a_group_shares_its_record_and_samples_its_own_replies(tmp_path):
    job = tiny(tmp_path, **{"ppo.advantage": "grpo", "rollout.group_size": 4, "rollout.episodes": 8,
                            "rollout.sampling.max_new_tokens": 12})
    trainer = Trainer(job)
    episodes, _, _ = trainer.rollout_batch()
    assert [ep.record.id for ep in episodes[:4]] == [episodes[0].record.id] * 4
    assert episodes[4].record.id != episodes[0].record.id
    assert episodes[0].utterances[0] == episodes[1].utterances[0]  # the same opening
    first_replies = {tuple(ep.actions[0].response_ids) for ep in episodes[:4]}
    assert len(first_replies) > 1  # independent samples, not one reply copied


def test_dr_grpo_divides_the_token_loss_by_a_constant(tmp_path):
    job = tiny(tmp_path, **{"ppo.advantage": "dr_grpo", "rollout.group_size": 2})
    trainer = Trainer(job)
    episodes, lo, hi = trainer.rollout_batch()
    rows = build_rows(episodes, trainer.models.policy, trainer.salience)
    from cagsr.ppo.experience import assemble

    scored = trainer.score(rows, episodes, lo, hi, {})
    exp = assemble(rows=rows, episodes=episodes, scored=scored, ppo=job.ppo, final_weight=1.0, group_size=2,
                   episode_token_budget=trainer.episode_token_budget)
    budget = job.rollout.turns * job.rollout.sampling.max_new_tokens
    assert exp.episode_token_budget == budget
    tokens, _, divisor = _totals(exp, torch.tensor([0, 1]))
    assert divisor == 2 * budget and tokens == float(exp.rows.response_mask[exp.rows.rows_of_episodes(
        torch.tensor([0, 1]))].sum())


@pytest.mark.parametrize(("overrides", "message"), [
    ({"ppo.advantage": "grpo"}, "groups of at least 2"),
    ({"ppo.advantage": "rloo", "rollout.group_size": 2, "ppo.critic": "head"}, "uses no critic"),
    ({"ppo.advantage": "return", "ppo.critic": "none"}, "needs a critic"),
    ({"ppo.advantage": "grpo", "rollout.group_size": 3}, "do not split into groups of 3"),
])
def test_estimator_settings_that_cannot_work_fail_at_load(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        tiny(tmp_path, **overrides)


def test_reinforce_pp_needs_no_groups_and_critic_auto_resolves(tmp_path):
    job = tiny(tmp_path, **{"ppo.advantage": "reinforce_pp"})
    assert job.ppo.critic == "auto" and job.ppo.critic_kind == "none"
    assert tiny(tmp_path).ppo.critic_kind == "separate"


def test_a_critic_free_run_resumes_exactly(tmp_path):
    settings = {"ppo.advantage": "rloo", "rollout.group_size": 2, "ppo.iterations": 2, "checkpoints.every": 1}
    straight = Trainer(load_job(TrainJob, "tiny", {"run.output_dir": str(tmp_path / "a"), **settings}))
    straight.train()
    first = Trainer(load_job(TrainJob, "tiny", {"run.output_dir": str(tmp_path / "b"), **settings,
                                                "ppo.iterations": 1}))
    first.train()
    job = load_job(TrainJob, "tiny", {"run.output_dir": str(tmp_path / "b"), **settings})
    resumed = Trainer(job, resume=tmp_path / "b")
    assert resumed.state.iteration == 1 and resumed.state.position == 2  # 2 records: 4 episodes in pairs
    resumed.train()
    for a, b in zip(straight.models.policy.model.parameters(), resumed.models.policy.model.parameters(),
                    strict=True):
        assert torch.equal(a, b)
