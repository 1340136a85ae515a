"""Who this process is in a multi-process run: rank, world size and the process group behind them.

    ctx = init_distributed("auto")   # torchrun / accelerate launch set WORLD_SIZE, RANK, LOCAL_RANK
    if ctx.is_main:
        write_logs()

Without a launcher (no WORLD_SIZE, or 1) the context is a world of one and every collective in
cagsr.distributed.ops is a no-op, so the trainer runs the same code with or without a launcher.
The backend is gloo for CPU models and NCCL for CUDA models (CAGSR_DIST_BACKEND overrides it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch

from cagsr.errors import ConfigError

# FSDP launches are honoured (cagsr.distributed.fsdp); DeepSpeed would silently run unsharded: refuse.
UNSUPPORTED_LAUNCH_ENV = {"ACCELERATE_USE_DEEPSPEED": "DeepSpeed"}


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run (a world of one when not launched by torchrun/accelerate)."""

    rank: int = 0
    """Global rank, 0 .. world - 1."""
    world: int = 1
    """Number of processes in the run."""
    local_rank: int = 0
    """Rank on this node (picks the GPU)."""
    backend: str | None = None
    """gloo or nccl; None in a world of one."""

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs, samples, checkpoints and the final model."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def comm_device(self) -> torch.device:
        """Where tensors must live for a collective (NCCL only talks to CUDA memory)."""
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")


SINGLE = DistContext()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ConfigError(f"environment variable {name}: expected an integer, got {value!r}") from None


def choose_backend(device: str) -> str:
    """nccl for CUDA models, gloo otherwise; CAGSR_DIST_BACKEND=gloo|nccl forces one."""
    forced = os.environ.get("CAGSR_DIST_BACKEND")
    if forced:
        if forced not in ("gloo", "nccl"):
            raise ConfigError(
                f"environment variable CAGSR_DIST_BACKEND: expected gloo or nccl, got {forced!r}"
            )
        return forced
    wants_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return "nccl" if wants_cuda else "gloo"


def check_launch() -> None:
    """Refuse accelerate configs cagsr cannot honour (see docs/distributed.md)."""
    for name, what in UNSUPPORTED_LAUNCH_ENV.items():
        if os.environ.get(name, "").lower() in ("1", "true", "yes"):
            raise ConfigError(
                f"{what} launch ({name}=true): cagsr shards with FSDP, not {what}; launch with an FSDP "
                "config instead (examples/accelerate/fsdp.yaml, docs/distributed.md)"
            )


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group the launcher described in the environment (or a world of one).

    A collective that waits longer than CAGSR_DIST_TIMEOUT_S seconds (default 1800) fails instead of
    hanging, e.g. when another rank died."""
    check_launch()
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return SINGLE
    import torch.distributed as dist

    local_rank = _env_int("LOCAL_RANK", 0)
    if not dist.is_initialized():
        backend = choose_backend(device)
        if backend == "nccl":
            torch.cuda.set_device(local_rank)  # "cuda" / "auto" then means this rank's GPU
        timeout = timedelta(seconds=_env_int("CAGSR_DIST_TIMEOUT_S", 1800))
        dist.init_process_group(backend=backend, timeout=timeout)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, str(dist.get_backend()))


def shutdown() -> None:
    """Leave the process group if one was joined (torch warns at exit when a group is left open)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
