"""Training state that must survive a restart: iteration, data position, RNGs, weights, optimizer.

    save_state(trainer)            # rank 0 writes an atomic checkpoint under run_dir/checkpoints
    load_state(trainer, run_dir)   # newest checkpoint that verifies; bad ones are named and skipped

Rollout randomness is derived from (seed, iteration, rank), and the data order of each epoch from
(seed, epoch), so the position and iteration are all a resume needs for them; the global RNG states
(python, numpy, torch, CUDA) of every rank are saved as well, for anything else that draws from them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from cagsr.distributed import all_gather_object, any_true, check_in_sync, main_first
from cagsr.distributed.fsdp import copy_whole_into_sharded, full_optimizer_state, load_full_optimizer_state
from cagsr.errors import CagsrError
from cagsr.ppo.checkpoint import (
    find_good_checkpoint,
    remove_stale_temps,
    restore_rng,
    rng_state,
    save_checkpoint,
)
from cagsr.ppo.guards import io_failure
from cagsr.reward.definition import FILE as DEFINITION_FILE
from cagsr.reward.definition import RewardDefinition


@dataclass
class TrainState:
    iteration: int
    """Completed PPO iterations."""
    seed: int
    """Run seed (the data order of every epoch and the rollout randomness derive from it)."""
    n_records: int
    """Training records available."""
    position: int = 0
    """Records consumed so far (across epochs), the same on every rank."""
    skipped_batches: int = 0
    """Batches skipped by the NaN/Inf guard."""
    bad_in_a_row: int = 0
    """Consecutive skipped batches."""

    @classmethod
    def fresh(cls, seed: int, n_records: int) -> TrainState:
        return cls(iteration=0, seed=seed, n_records=n_records)

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

    def rollout_rng(self, rank: int = 0) -> random.Random:
        """Sampling seeds and candidate choice of this iteration on this rank: a stream of its own per
        (seed, iteration, rank), so ranks never share draws and a resumed run draws the same numbers."""
        key = hashlib.sha256(f"cagsr-rollout/{self.seed}/{self.iteration}/{rank}".encode()).digest()
        return random.Random(int.from_bytes(key[:8], "little"))

    def to_json(self) -> dict:
        return {
            "iteration": self.iteration,
            "seed": self.seed,
            "n_records": self.n_records,
            "position": self.position,
            "skipped_batches": self.skipped_batches,
            "bad_in_a_row": self.bad_in_a_row,
        }


def params_finite(module_params) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module_params)


def checkpoint_bytes(models) -> int:
    """About how many bytes one checkpoint takes: saved policy weights, critic, optimizer moments."""
    learner = models.learner
    trainable = [p for p in learner.parameters() if p.requires_grad]
    policy = [
        p for p in models.policy.model.parameters() if p.requires_grad or not _is_peft(models.policy.model)
    ]

    def size(tensors) -> int:
        return sum(t.numel() * t.element_size() for t in tensors)

    moments = [v for s in learner.optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    return (
        size(policy)
        + (0 if models.critic is None else size(models.critic.parameters()))
        + (size(moments) if moments else 2 * size(trainable))
    )


def _is_peft(model) -> bool:
    return hasattr(model, "peft_config")  # PEFT saves the adapter only


def check_disk_space(folder: Path, needed: int) -> None:
    """Raise naming the folder when its file system cannot hold `needed` more bytes."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise CagsrError(
            f"{folder}: {free / 2**20:.1f} MiB free on its disk, a checkpoint needs about "
            f"{needed / 2**20:.1f} MiB (free some space or choose another --output-dir)"
        )


def optimizer_state(learner) -> dict:
    """The optimizer's state dict; with FSDP gathered to whole tensors keyed by parameter name."""
    if not learner.sharded:
        return learner.optimizer.state_dict()
    return full_optimizer_state(learner.modules(), learner.optimizer)


def load_learner_state(models, optimizer: dict) -> None:
    """Optimizer state into the learner; with FSDP the loaded whole weights are sharded again first."""
    learner = models.learner
    if not learner.sharded:
        learner.optimizer.load_state_dict(optimizer)
        return
    copy_whole_into_sharded(models.policy.model, learner.policy)
    if learner.critic is not models.critic:
        copy_whole_into_sharded(models.critic, learner.critic)
    load_full_optimizer_state(learner.modules(), learner.optimizer, optimizer)


def save_state(trainer) -> Path:
    """Checkpoint the run (a collective: every rank calls it, rank 0 writes)."""
    models, state, ctx = trainer.models, trainer.state, trainer.dist
    if any_true(ctx, not params_finite(models.whole_parameters())):
        raise CagsrError(
            f"iteration {state.iteration}: the policy or critic parameters hold NaN/Inf; not writing "
            "a checkpoint (resume from the last good one with a lower optimizer.lr)"
        )
    check_in_sync(ctx, models.whole_parameters(), "policy and critic")
    rngs = all_gather_object(ctx, rng_state())
    optimizer = optimizer_state(models.learner)  # with FSDP a collective: every rank gathers

    def write(folder: Path) -> None:
        models.policy.model.save_pretrained(folder / "policy")
        torch.save(
            {
                "critic": None if models.critic is None else models.critic.state_dict(),
                "optimizer": optimizer,
                "scheduler": models.learner.scheduler.state_dict(),
                "rng": rngs,
                "generator": trainer.generator.get_state(),
            },
            folder / "trainer.pt",
        )
        (folder / "state.json").write_text(json.dumps(state.to_json(), indent=1))
        trainer.definition.save(folder)

    def save() -> Path:
        root = trainer.run_dir / "checkpoints"
        check_disk_space(root, checkpoint_bytes(models))
        try:
            return save_checkpoint(root, state.iteration, write, trainer.job.checkpoints.keep)
        except Exception as err:
            reason = io_failure(err)
            if reason is None:
                raise
            raise CagsrError(
                f"{root}: could not write the checkpoint of iteration {state.iteration} ({reason})"
            ) from None

    return main_first(ctx, save)


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
        raise CagsrError(
            f"{folder}: checkpoint does not fit the model (missing {sorted(set(missing) - tied)[:3]},"
            f" unexpected {unexpected[:3]})"
        )
    model.tie_weights()


def choose_checkpoint(run_dir: Path) -> Path:
    """Newest good checkpoint; bad newer ones are named on stderr, none at all is an error naming them."""
    root = Path(run_dir) / "checkpoints"
    for stale in remove_stale_temps(root) if root.exists() else []:
        print(f"removed a half-written checkpoint: {stale}", file=sys.stderr)
    folder, problems = find_good_checkpoint(root)
    for problem in problems:
        print(f"skipping bad checkpoint: {problem}", file=sys.stderr)
    if folder is None:
        detail = f" ({'; '.join(problems)})" if problems else ""
        raise CagsrError(f"{run_dir}: no usable checkpoint to resume from{detail}")
    return folder


def _restore_rngs(saved, ctx) -> None:
    rngs = [saved] if isinstance(saved, dict) else list(saved)
    if len(rngs) == ctx.world:
        restore_rng(rngs[ctx.rank])
        return
    if ctx.is_main:
        warnings.warn(
            f"checkpoint was written by {len(rngs)} process(es), resuming with {ctx.world}: the data "
            "order and rollout seeds continue, but the run is not bit-identical to an uninterrupted one",
            stacklevel=3,
        )
    restore_rng(rngs[min(ctx.rank, len(rngs) - 1)])


def load_state(trainer, run_dir: Path) -> Path:
    """Every rank loads the checkpoint rank 0 chose (the run folder must be visible to all nodes)."""
    folder = main_first(trainer.dist, lambda: choose_checkpoint(run_dir))
    models = trainer.models
    _load_policy_weights(models.policy.model, folder / "policy")
    blob = torch.load(folder / "trainer.pt", weights_only=False)
    if models.critic is not None:
        models.critic.load_state_dict(blob["critic"])
    load_learner_state(models, blob["optimizer"])
    models.learner.scheduler.load_state_dict(blob["scheduler"])
    trainer.generator.set_state(blob["generator"])
    saved = json.loads((folder / "state.json").read_text())
    state = trainer.state
    state.iteration, state.position = saved["iteration"], saved["position"]
    state.skipped_batches, state.bad_in_a_row = saved["skipped_batches"], saved.get("bad_in_a_row", 0)
    _restore_rngs(blob["rng"], trainer.dist)
    if (folder / DEFINITION_FILE).is_file():
        trainer.use_definition(RewardDefinition.load(folder))
    else:  # a checkpoint written before reward definitions: its IDF table only
        trainer.salience.load_idf(folder)
        trainer.use_definition(dataclasses.replace(trainer.definition, idf=trainer.salience.idf))
    trainer.engine.sync_weights()
    return folder


def trim_logs(run_dir: Path, iteration: int) -> None:
    """Drop metrics and samples logged after the checkpoint (a killed run logged them, the resumed run
    logs them again), so every iteration appears once."""
    for name, key, limit in (
        ("metrics.jsonl", "step", iteration),
        ("samples.jsonl", "iteration", iteration - 1),
    ):
        path = Path(run_dir) / name
        if not path.exists():
            continue
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get(key, 0) <= limit:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line cut short by the kill
        tmp = path.with_name(f".{name}.{os.getpid()}")
        tmp.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
        os.replace(tmp, path)
