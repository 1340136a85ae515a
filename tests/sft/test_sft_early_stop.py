"""Early stopping of SFT on a flattened validation loss (sft.patience)."""

import pytest
import torch

from cagsr.config import from_dict
from cagsr.data.sources import load_records, split_records
from cagsr.formatting.examples import supervised_pairs
from cagsr.models.config import ModelConfig
from cagsr.models.registry import load_model
from cagsr.sft.config import SFTJob
from cagsr.sft.trainer import BestWeights, flattened, run_sft, validation_loss
from cagsr.utils.logging import read_metrics


def test_flattened_rule_by_hand():
    assert not flattened([3.0, 2.0], patience=0, min_delta=0.01)  # off
    assert not flattened([3.0], patience=1, min_delta=0.01)  # nothing to compare with
    assert flattened([2.0, 1.99], patience=1, min_delta=0.01)  # 1.99 > 2.0 * 0.99 = 1.98
    assert not flattened([2.0, 1.97], patience=1, min_delta=0.01)
    assert not flattened([2.0, 1.99, 1.5], patience=2, min_delta=0.01)


def test_run_stops_when_the_validation_loss_flattens(tmp_path):
    # min_delta 0.9: only a 90% fall counts as an improvement, so the first evaluation after step 0 stops
    job = from_dict(SFTJob, {"model": {"name": "tiny-llama"}, "data": {"path": "generated:math", "num_generated": 20},
                             "sft": {"max_steps": 20, "batch_size": 2, "eval_every": 2, "eval_pairs": 4, "samples": 0,
                                     "patience": 1, "min_delta": 0.9},
                             "run": {"output_dir": str(tmp_path / "sft"), "progress": False, "threads": 1}})
    result = run_sft(job)
    assert result.stopped_at == 2 and [s for s, _ in result.val_losses] == [0, 2]
    assert read_metrics(result.run_dir)[-1]["sft/early_stop"] == 1.0
    assert (result.run_dir / "model" / "config.json").exists()


def test_best_weights_restore_the_lowest_loss_by_hand():
    layer = torch.nn.Linear(2, 1)
    best = BestWeights(enabled=True)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        best.update(layer, 0, 2.0)
        layer.weight.fill_(2.0)
        best.update(layer, 10, 1.5)  # the best
        layer.weight.fill_(3.0)
        best.update(layer, 20, 1.7)
    assert best.restore(layer, 20) == 10 and torch.all(layer.weight == 2.0)
    off = BestWeights(enabled=False)
    off.update(layer, 0, 0.1)
    assert off.restore(layer, 20) == 20 and torch.all(layer.weight == 2.0)


def _diverging_job(tmp_path, keep_best: bool) -> SFTJob:
    # lr 1.0 makes every step worse than the random start, so the lowest validation loss is step 0's
    return from_dict(SFTJob, {"model": {"name": "tiny-llama"}, "data": {"path": "generated:math", "num_generated": 20},
                              "sft": {"max_steps": 4, "batch_size": 2, "eval_every": 2, "eval_pairs": 4, "samples": 0,
                                      "lr": 1.0, "warmup_steps": 1, "keep_best": keep_best},
                              "run": {"output_dir": str(tmp_path / f"sft-{keep_best}"), "progress": False, "threads": 1}})


def _saved_validation_loss(job: SFTJob, model_dir) -> float:
    records = load_records(job.data)
    train_records, val_records = split_records(records, job.data.val_fraction, job.data.seed)
    loaded = load_model(ModelConfig(name=str(model_dir)))
    pairs = supervised_pairs(val_records or train_records[:4], loaded, job.sft.max_context)[: job.sft.eval_pairs]
    return validation_loss(loaded, pairs, job.sft.batch_size)


def test_keep_best_saves_the_weights_of_the_lowest_validation_loss(tmp_path):
    for keep_best in (True, False):
        job = _diverging_job(tmp_path, keep_best)
        result = run_sft(job)
        losses = dict(result.val_losses)
        assert losses[0] < min(losses[2], losses[4])  # the start is the best, as the lr intends
        assert result.kept_step == (0 if keep_best else 4)
        saved = _saved_validation_loss(job, result.run_dir / "model")
        assert saved == pytest.approx(losses[result.kept_step], rel=1e-4)
