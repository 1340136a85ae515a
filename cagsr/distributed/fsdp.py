"""FSDP2 sharding of what the PPO update trains, for runs whose training state does not fit one device.

    plan = plan_from_env()                        # `accelerate launch` with an FSDP config sets it
    sharded = sharded_copy(model, plan, ctx)      # `model` stays whole, for rollouts and scoring
    ... optimizer over sharded.parameters(), update in lockstep ...
    copy_sharded_into_whole(sharded, model)       # the rollout copy follows each update

Why a hybrid: rollouts, scoring and evaluation are no-grad passes whose number differs between ranks
(EOS, dialogue lengths, rank 0's evaluation), and a sharded module needs every rank in every forward.
So those passes use one whole copy of the weights per rank, with no collectives, and only the update
runs sharded — the part holding gradients, Adam moments and trainable weights (three quarters of a
full fine-tune's memory with AdamW). It is what verl and OpenRLHF do with their inference engines.

Run: torchrun --nproc_per_node 2 -m cagsr train --config tiny   (with ACCELERATE_USE_FSDP=true)
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass

import torch
from torch import nn

from cagsr.distributed.context import DistContext
from cagsr.distributed.ops import all_reduce_
from cagsr.errors import ConfigError

TRUE, FALSE = ("1", "true", "yes", "full_shard"), ("0", "false", "no", "shard_grad_op")


@dataclass(frozen=True)
class FSDPPlan:
    """How to shard, read from the environment an FSDP `accelerate launch` config sets."""

    reshard_after_forward: bool = True
    """Free the gathered weights after each layer's forward (FULL_SHARD / ZeRO-3) or keep them until
    the backward (SHARD_GRAD_OP / ZeRO-2: more memory, one all-gather less)."""
    layer_classes: tuple[str, ...] = ()
    """Class names of the blocks sharded one by one (empty: the model's `_no_split_modules`)."""


def _flag(env: dict, name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in TRUE or value in FALSE:
        return value in TRUE
    raise ConfigError(f"environment variable {name}: expected true or false, got {value!r}")


def plan_from_env(env: dict | None = None) -> FSDPPlan | None:
    """The FSDP plan when the launcher asked for FSDP (ACCELERATE_USE_FSDP=true), else None."""
    env = dict(os.environ if env is None else env)
    if not _flag(env, "ACCELERATE_USE_FSDP", False):
        return None
    strategy = env.get("FSDP_SHARDING_STRATEGY", "").strip().upper()
    if strategy and strategy not in ("FULL_SHARD", "SHARD_GRAD_OP", "1", "2"):
        raise ConfigError(
            f"environment variable FSDP_SHARDING_STRATEGY: cagsr shards with FULL_SHARD or SHARD_GRAD_OP, "
            f"not {strategy}"
        )
    default_reshard = strategy not in ("SHARD_GRAD_OP", "2")
    classes = tuple(c.strip() for c in env.get("FSDP_TRANSFORMER_CLS_TO_WRAP", "").split(",") if c.strip())
    return FSDPPlan(_flag(env, "FSDP_RESHARD_AFTER_FORWARD", default_reshard), classes)


def _block_names(model: nn.Module, plan: FSDPPlan) -> set[str]:
    names = set(plan.layer_classes) or set(getattr(model, "_no_split_modules", None) or ())
    if not names:
        inner = getattr(model, "backbone", None)  # a separate critic wraps the policy's network
        names = set(getattr(inner, "_no_split_modules", None) or ())
    found = {type(m).__name__ for m in model.modules()}
    if plan.layer_classes and not names & found:
        raise ConfigError(
            f"environment variable FSDP_TRANSFORMER_CLS_TO_WRAP: no {sorted(names)} in the model "
            f"(it has e.g. {sorted(found)[:6]})"
        )
    return names & found


def sharded_copy(module: nn.Module, plan: FSDPPlan, ctx: DistContext) -> nn.Module:
    """A copy of `module` sharded over the ranks: each block, then the rest, one FSDP unit each.

    Gradients are summed over ranks, not averaged: cagsr divides each rank's loss by global counts."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule, fully_shard

    mesh = init_device_mesh("cuda" if ctx.backend == "nccl" else "cpu", (ctx.world,))
    sharded = copy.deepcopy(module)
    blocks = _block_names(sharded, plan)
    for sub in sharded.modules():
        if type(sub).__name__ in blocks:
            fully_shard(sub, mesh=mesh, reshard_after_forward=plan.reshard_after_forward)
    fully_shard(sharded, mesh=mesh, reshard_after_forward=plan.reshard_after_forward)
    for sub in sharded.modules():
        if isinstance(sub, FSDPModule):
            sub.set_gradient_divide_factor(1.0)
            sub.set_force_sum_reduction_for_comms(True)  # gloo has no PREMUL_SUM
    return sharded


def is_sharded(tensor: torch.Tensor) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(tensor, DTensor)


def copy_sharded_into_whole(sharded: nn.Module, whole: nn.Module) -> None:
    """Gather the sharded weights (a collective) and copy them into the whole copy in place."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(sharded, options=StateDictOptions(full_state_dict=True))
    with torch.no_grad():
        for name, tensor in whole.state_dict().items():
            if name in full:
                tensor.copy_(full[name])


def copy_whole_into_sharded(whole: nn.Module, sharded: nn.Module) -> None:
    """Load the whole copy's weights (identical on every rank) into the shards, e.g. after a resume."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(sharded, whole.state_dict(), options=StateDictOptions(full_state_dict=True))


def full_optimizer_state(modules: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer's state gathered to whole tensors, keyed by parameter name (a collective)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_optimizer_state_dict(modules, optimizer, options=options)


def load_full_optimizer_state(modules: nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True)
    set_optimizer_state_dict(modules, optimizer, optim_state_dict=state, options=options)


def clip_grad_norm_(params: list[nn.Parameter], max_norm: float, ctx: DistContext) -> torch.Tensor:
    """torch's clip_grad_norm_ for a mix of sharded (DTensor) and replicated parameters: the shards'
    squared norms are summed over ranks, the replicated ones (already all-reduced) counted once."""
    grads = [p.grad for p in params if p.grad is not None]
    if not any(is_sharded(g) for g in grads):
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    local = torch.zeros((), dtype=torch.float64)
    replicated = torch.zeros((), dtype=torch.float64)
    for g in grads:
        if is_sharded(g):
            local += g.to_local().double().pow(2).sum().cpu()
        else:
            replicated += g.double().pow(2).sum().cpu()
    all_reduce_(ctx, local)
    norm = (local + replicated).sqrt().float()
    coef = max_norm / (float(norm) + 1e-6)
    if math.isfinite(float(norm)) and coef < 1.0:
        for g in grads:
            (g.to_local() if is_sharded(g) else g).mul_(coef)
    return norm
