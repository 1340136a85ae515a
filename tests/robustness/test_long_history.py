"""Histories longer than the context are truncated from the oldest turns with one warning per run."""

import json
import warnings

from cagsr.config import from_dict, load_job, to_dict
from cagsr.ppo.config import TrainJob
from cagsr.ppo.trainer import Trainer

SENTENCE = "please check the reservation for table number {} at the downtown branch tonight"


def long_dialogue(i: int) -> dict:
    turns = []
    for t in range(6):
        role = "agent" if t % 2 == 0 else "user"
        turns.append({"role": role, "text": SENTENCE.format(f"{i}-{t}") + f" ({role} turn {t})"})
    return {"id": f"long-{i}", "turns": turns}


def test_overlong_histories_train_with_one_warning(tmp_path):
    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps(long_dialogue(i)) + "\n" for i in range(6)))
    cfg = to_dict(load_job(TrainJob, "tiny", {}))
    cfg["data"] = {"path": str(data), "val_fraction": 0.0}
    cfg["rollout"] |= {"max_context": 48, "episodes": 2, "turns": 2}
    cfg["ppo"] |= {"iterations": 2, "epochs": 1}
    cfg["heldout"] |= {"episodes": 2}
    cfg["run"] |= {"output_dir": str(tmp_path / "run"), "progress": False}
    trainer = Trainer(from_dict(TrainJob, cfg))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = trainer.train()
    truncations = [str(w.message) for w in caught if "exceeds" in str(w.message)]
    assert len(truncations) == 1, truncations
    assert "dropped the oldest" in truncations[0] and "further truncations are not reported" in truncations[0]
    assert len(result.history) == 2 and not result.stopped_early
    # 2 iterations x 2 episodes x 2 turns (+ evaluation) were all over the budget: every prompt was cut.
    samples = [json.loads(s) for s in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert samples and all(len(s["turns"]) == 2 for s in samples)
