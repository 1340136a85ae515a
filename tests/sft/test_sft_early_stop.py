"""Early stopping of SFT on a flattened validation loss (sft.patience)."""

from cagsr.config import from_dict
from cagsr.sft.config import SFTJob
from cagsr.sft.trainer import flattened, run_sft
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
