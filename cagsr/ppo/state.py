"""Training state that must survive a restart: iteration, data position, RNGs, weights, optimizer.

    save_state(trainer)            # atomic checkpoint under run_dir/checkpoints
    load_state(trainer, run_dir)   # newest checkpoint that verifies; bad ones are named and skipped
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file

from cagsr.errors import CagsrError
from cagsr.ppo.checkpoint import latest_good_checkpoint, restore_rng, rng_state, save_checkpoint


@dataclass
class TrainState:
    iteration: int
    """Completed PPO iterations."""
    seed: int
    """Run seed (the data order of every epoch derives from it)."""
    n_records: int
    """Training records available."""
    position: int = 0
    """Records consumed so far (across epochs)."""
    skipped_batches: int = 0
    """Batches skipped by the NaN/Inf guard."""
    bad_in_a_row: int = 0
    """Consecutive skipped batches."""
    rng: random.Random = field(default_factory=random.Random)
    """Rollout randomness (sampling seeds, candidate choice)."""

    @classmethod
    def fresh(cls, seed: int, n_records: int) -> TrainState:
        return cls(iteration=0, seed=seed, n_records=n_records, rng=random.Random(seed))

    def _order(self, epoch: int) -> list[int]:
        order = list(range(self.n_records))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def next_records(self, records: list, count: int) -> list:
        """The next `count` records of a per-epoch shuffle; the position is all that resume needs."""
        out = []
        for _ in range(count):
            epoch, offset = divmod(self.position, self.n_records)
            out.append(records[self._order(epoch)[offset]])
            self.position += 1
        return out

    def to_json(self) -> dict:
        return {"iteration": self.iteration, "seed": self.seed, "n_records": self.n_records,
                "position": self.position, "skipped_batches": self.skipped_batches}


def save_state(trainer) -> Path:
    models, state = trainer.models, trainer.state

    def write(folder: Path) -> None:
        models.policy.model.save_pretrained(folder / "policy")
        torch.save({"critic": models.learner.critic.state_dict(),
                    "optimizer": models.learner.optimizer.state_dict(),
                    "scheduler": models.learner.scheduler.state_dict(),
                    "rng": rng_state(state.rng), "generator": trainer.generator.get_state()},
                   folder / "trainer.pt")
        (folder / "state.json").write_text(json.dumps(state.to_json(), indent=1))
        trainer.salience.save(folder)

    return save_checkpoint(trainer.run_dir / "checkpoints", state.iteration, write, trainer.job.ppo.keep_checkpoints)


def _load_policy_weights(model: torch.nn.Module, folder: Path) -> None:
    files = sorted(folder.glob("*.safetensors"))
    state = {}
    for f in files:
        state.update(load_file(str(f)))
    if (folder / "adapter_model.safetensors").exists():
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
        return
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {k for k in missing if "lm_head" in k or "embed" in k or "shared" in k}
    if set(missing) - tied or unexpected:
        raise CagsrError(f"{folder}: checkpoint does not fit the model (missing {sorted(set(missing) - tied)[:3]},"
                         f" unexpected {unexpected[:3]})")
    model.tie_weights()


def load_state(trainer, run_dir: Path) -> None:
    folder = latest_good_checkpoint(Path(run_dir) / "checkpoints", warn=lambda m: print(m, file=sys.stderr))
    if folder is None:
        raise CagsrError(f"{run_dir}: no usable checkpoint to resume from")
    models = trainer.models
    _load_policy_weights(models.policy.model, folder / "policy")
    blob = torch.load(folder / "trainer.pt", weights_only=False)
    models.learner.critic.load_state_dict(blob["critic"])
    models.learner.optimizer.load_state_dict(blob["optimizer"])
    models.learner.scheduler.load_state_dict(blob["scheduler"])
    trainer.generator.set_state(blob["generator"])
    saved = json.loads((folder / "state.json").read_text())
    state = trainer.state
    state.iteration, state.position = saved["iteration"], saved["position"]
    state.skipped_batches = saved["skipped_batches"]
    restore_rng(blob["rng"], state.rng)
    trainer.salience.load_idf(folder)
    trainer.engine.sync_weights()
