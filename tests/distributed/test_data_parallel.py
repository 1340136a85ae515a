"""Data-parallel bookkeeping without processes: shards, minibatch dealing, merging, loss normalisation,
and the checks that refuse a launch cagsr cannot honour."""

import dataclasses

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cagsr.config import from_dict, load_job, to_dict
from cagsr.distributed import (
    SINGLE,
    all_gather_object,
    any_true,
    main_first,
    reduce_max_metrics,
    shard,
    shard_bounds,
)
from cagsr.errors import CagsrError
from cagsr.ppo.config import TrainJob
from cagsr.ppo.trainer import Trainer
from cagsr.ppo.update import _totals, pass_loss
from cagsr.scoring.layout import plan_passes
from cagsr.scoring.passes import ScoredPart, merge_parts


@given(n=st.integers(0, 300), world=st.integers(1, 9))
def test_shards_cover_the_batch_exactly_once(n, world):
    items = list(range(n))
    parts = [shard(items, rank, world) for rank in range(world)]
    assert [i for part in parts for i in part] == items  # in order, each item once
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    bounds = [shard_bounds(n, rank, world) for rank in range(world)]
    assert all(hi == lo_next for (_, hi), (lo_next, _) in zip(bounds, bounds[1:], strict=False))


@given(n=st.integers(1, 64), minibatch=st.integers(1, 16), world=st.integers(1, 5), seed=st.integers(0, 10))
def test_minibatch_episodes_are_dealt_to_exactly_one_rank(n, minibatch, world, seed):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    seen = []
    for start in range(0, n, minibatch):
        index = order[start : start + minibatch]
        dealt = [index[rank::world] for rank in range(world)]
        assert sorted(torch.cat(dealt).tolist()) == sorted(index.tolist())
        seen += torch.cat(dealt).tolist()
    assert sorted(seen) == list(range(n))


def test_shard_rejects_a_rank_outside_the_world():
    with pytest.raises(ValueError):
        shard_bounds(4, 2, 2)


def test_world_of_one_collectives_are_identity():
    assert all_gather_object(SINGLE, {"a": 1}) == [{"a": 1}]
    assert any_true(SINGLE, True) and not any_true(SINGLE, False)
    assert reduce_max_metrics(SINGLE, {"time/x": 1.0}) == {"time/x": 1.0}
    assert main_first(SINGLE, lambda: 7) == 7
    with pytest.raises(CagsrError, match="boom"):
        main_first(SINGLE, lambda: (_ for _ in ()).throw(CagsrError("boom")))


def _part(rows: int, episodes: tuple[int, int], n_episodes: int, seed: int) -> ScoredPart:
    g = torch.Generator().manual_seed(seed)
    table = torch.zeros(n_episodes, 3)
    table[episodes[0] : episodes[1]] = torch.randn(episodes[1] - episodes[0], 3, generator=g)
    mask = table != 0
    return ScoredPart(
        old_logprobs=torch.randn(rows, 5, generator=g),
        ref_logprobs=torch.randn(rows, 5, generator=g),
        values=torch.randn(rows, 5, generator=g),
        components={"reward": table, "turn_mask": mask},
        rewards=table * 2,
    )


def test_merged_parts_equal_the_single_process_tables():
    a, b = _part(3, (0, 2), 4, 0), _part(2, (2, 4), 4, 1)
    whole = merge_parts([a, b])
    assert torch.equal(whole.old_logprobs, torch.cat([a.old_logprobs, b.old_logprobs]))
    assert torch.equal(whole.values, torch.cat([a.values, b.values]))
    assert torch.equal(whole.components["reward"][:2], a.components["reward"][:2])
    assert torch.equal(whole.components["reward"][2:], b.components["reward"][2:])
    assert torch.equal(whole.rewards, a.rewards + b.rewards)
    assert whole.components["turn_mask"].dtype == torch.bool
    assert torch.equal(whole.components["turn_mask"], a.components["turn_mask"] | b.components["turn_mask"])


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    base = to_dict(load_job(TrainJob, "tiny", {}))
    base["run"] |= {"output_dir": str(tmp_path_factory.mktemp("shard") / "run"), "progress": False}
    trainer = Trainer(from_dict(TrainJob, base))
    exp, _ = trainer.collect({})
    return trainer, exp


def _grads(learner):
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in learner.parameters()]


def _backward(learner, exp, rows, totals, scoring, cfg) -> dict:
    """Loss of `rows` over their passes, weighted by the minibatch totals; returns the summed stats."""
    summed: dict[str, float] = {}
    for part in plan_passes(exp.rows, layout=scoring.layout, token_budget=scoring.token_budget,
                            pad_id=0, encoder_decoder=False, index=rows):
        loss, stats = pass_loss(learner, exp, part, cfg, totals)
        loss.backward()
        summed = {k: summed.get(k, 0.0) + v for k, v in stats.items()}
    return summed


@pytest.mark.parametrize(("world", "budget"), [(2, 4096), (3, 4096), (2, 64)])
def test_rank_losses_sum_to_the_single_process_gradient(collected, world, budget):
    """Each rank's passes divide by the minibatch's global counts, so summed rank gradients = one process's
    (also when a small token budget splits a rank's episodes over several passes)."""
    trainer, exp = collected
    learner, cfg = trainer.models.learner, trainer.job.ppo
    scoring = dataclasses.replace(trainer.job.scoring, token_budget=budget)
    episodes = torch.randperm(exp.turn_mask.shape[0], generator=torch.Generator().manual_seed(0))[:3]
    index = exp.rows.rows_of_episodes(episodes)
    totals = _totals(exp, index)
    learner.optimizer.zero_grad(set_to_none=True)
    stats = _backward(learner, exp, index, totals, dataclasses.replace(scoring, token_budget=4096), cfg)
    single = _grads(learner)
    learner.optimizer.zero_grad(set_to_none=True)
    summed = dict.fromkeys(stats, 0.0)
    for rank in range(world):
        part_stats = _backward(learner, exp, exp.rows.rows_of_episodes(episodes[rank::world]), totals, scoring, cfg)
        summed = {k: summed[k] + part_stats.get(k, 0.0) for k in stats}
    for a, b in zip(single, _grads(learner), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-7)
    for key, value in stats.items():
        assert summed[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    learner.optimizer.zero_grad(set_to_none=True)


def test_a_global_batch_that_does_not_divide_over_the_ranks_is_refused(monkeypatch, tmp_path):
    from cagsr.distributed import DistContext
    from cagsr.errors import ConfigError
    from cagsr.ppo import trainer as trainer_module

    monkeypatch.setattr(trainer_module, "init_distributed", lambda device: DistContext(rank=0, world=3))
    job = from_dict(TrainJob, to_dict(load_job(TrainJob, "tiny", {"run.output_dir": str(tmp_path / "run")})))
    with pytest.raises(
        ConfigError, match="rollout.episodes: the global batch of 4 episodes must divide evenly over 3"
    ):
        Trainer(job)
    assert not (tmp_path / "run").exists()


def test_deepspeed_configs_are_refused_not_ignored(monkeypatch):
    from cagsr.distributed import init_distributed
    from cagsr.errors import ConfigError

    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    with pytest.raises(ConfigError, match="cagsr shards with FSDP, not DeepSpeed"):
        init_distributed("cpu")


def test_fsdp_plan_reads_what_accelerate_launch_sets():
    from cagsr.distributed.fsdp import FSDPPlan, plan_from_env
    from cagsr.errors import ConfigError

    assert plan_from_env({}) is None and plan_from_env({"ACCELERATE_USE_FSDP": "false"}) is None
    assert plan_from_env({"ACCELERATE_USE_FSDP": "true"}) == FSDPPlan(True, ())
    env = {"ACCELERATE_USE_FSDP": "true", "FSDP_SHARDING_STRATEGY": "SHARD_GRAD_OP",
           "FSDP_TRANSFORMER_CLS_TO_WRAP": "LlamaDecoderLayer, T5Block"}
    assert plan_from_env(env) == FSDPPlan(False, ("LlamaDecoderLayer", "T5Block"))
    assert plan_from_env(env | {"FSDP_RESHARD_AFTER_FORWARD": "true"}).reshard_after_forward
    with pytest.raises(ConfigError, match="FSDP_SHARDING_STRATEGY: cagsr shards with FULL_SHARD"):
        plan_from_env({"ACCELERATE_USE_FSDP": "true", "FSDP_SHARDING_STRATEGY": "HYBRID_SHARD"})
    with pytest.raises(ConfigError, match="FSDP_RESHARD_AFTER_FORWARD: expected true or false"):
        plan_from_env({"ACCELERATE_USE_FSDP": "true", "FSDP_RESHARD_AFTER_FORWARD": "maybe"})


def test_backend_follows_the_model_device(monkeypatch):
    from cagsr.distributed import choose_backend
    from cagsr.errors import ConfigError

    monkeypatch.delenv("CAGSR_DIST_BACKEND", raising=False)
    assert choose_backend("cpu") == "gloo" and choose_backend("cuda:1") == "nccl"
    monkeypatch.setenv("CAGSR_DIST_BACKEND", "gloo")
    assert choose_backend("cuda") == "gloo"
    monkeypatch.setenv("CAGSR_DIST_BACKEND", "mpi")
    with pytest.raises(ConfigError, match="CAGSR_DIST_BACKEND"):
        choose_backend("cpu")
