"""Collectives the PPO trainer needs, each a no-op in a world of one.

    lo, hi = shard_bounds(len(records), ctx.rank, ctx.world)      # this rank's slice of the batch
    parts = all_gather_object(ctx, my_episodes)                    # every rank's, in rank order
    all_reduce_grads(ctx, params)                                  # SUM: losses use global normalisers
    value = main_first(ctx, lambda: prepare_run_dir(...))          # rank 0 acts, every rank gets the result

Objects travel pickled (CPU tensors inside are fine); gradients travel flattened in buckets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from cagsr.distributed.context import DistContext
from cagsr.errors import CagsrError

T = TypeVar("T")
BUCKET_ELEMENTS = 1 << 24  # 64 MiB of float32 per all_reduce: bounded extra memory for big models


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """[lo, hi) of rank's contiguous block of n items; blocks of all ranks tile 0..n exactly once."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} is outside a world of {world}")
    return rank * n // world, (rank + 1) * n // world


def shard(items: Sequence[T], rank: int, world: int) -> list[T]:
    lo, hi = shard_bounds(len(items), rank, world)
    return list(items[lo:hi])


def _dist():
    import torch.distributed as dist

    return dist


def all_gather_object(ctx: DistContext, obj: T) -> list[T]:
    """[rank 0's obj, rank 1's obj, ...] on every rank."""
    if not ctx.active:
        return [obj]
    out: list[Any] = [None] * ctx.world
    _dist().all_gather_object(out, obj)
    return out


def broadcast_object(ctx: DistContext, obj: T, src: int = 0) -> T:
    if not ctx.active:
        return obj
    box = [obj]
    _dist().broadcast_object_list(box, src=src)
    return box[0]


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        _dist().barrier()


def main_first(ctx: DistContext, action: Callable[[], T]) -> T:
    """Run `action` on rank 0 only and hand its result (or its CagsrError) to every rank.

    Without this, an error on rank 0 (a read-only folder, a bad checkpoint) would leave the other
    ranks waiting in their next collective instead of stopping with the same message.
    """
    result: tuple[bool, Any] = (True, None)
    if ctx.is_main:
        try:
            result = (True, action())
        except CagsrError as err:
            result = (False, str(err))
    ok, value = broadcast_object(ctx, result)
    if not ok:
        raise CagsrError(value)
    return value


def all_reduce_(ctx: DistContext, tensor: Tensor, op: str = "sum") -> Tensor:
    """In-place all-reduce (sum or max) of a tensor on any device; returns it."""
    if not ctx.active:
        return tensor
    dist = _dist()
    reduce_op = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op]
    buffer = tensor if tensor.device == ctx.comm_device else tensor.to(ctx.comm_device)
    dist.all_reduce(buffer, op=reduce_op)
    if buffer is not tensor:
        tensor.copy_(buffer)
    return tensor


def any_true(ctx: DistContext, flag: bool) -> bool:
    """True on every rank when it is true on any (e.g. one rank received SIGTERM)."""
    if not ctx.active:
        return flag
    return bool(all_reduce_(ctx, torch.tensor([float(flag)]), op="max").item() > 0)


def _buckets(params: list[nn.Parameter]) -> Iterable[list[nn.Parameter]]:
    bucket, size = [], 0
    for p in params:
        if bucket and size + p.numel() > BUCKET_ELEMENTS:
            yield bucket
            bucket, size = [], 0
        bucket.append(p)
        size += p.numel()
    if bucket:
        yield bucket


def all_reduce_grads(ctx: DistContext, params: Iterable[nn.Parameter]) -> None:
    """Sum every parameter's gradient over ranks (a missing gradient counts as zeros).

    Every rank passes the same parameters in the same order; the caller's losses are already
    divided by global counts, so the sum is the single-process gradient.
    """
    if not ctx.active:
        return
    for bucket in _buckets(list(params)):
        for p in bucket:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in bucket])
        all_reduce_(ctx, flat)
        offset = 0
        for p in bucket:
            p.grad.copy_(flat[offset : offset + p.numel()].view_as(p.grad))
            offset += p.numel()


def broadcast_module(ctx: DistContext, module: nn.Module, src: int = 0) -> None:
    """Copy rank src's parameters and buffers to every rank (all ranks start from identical weights)."""
    if not ctx.active:
        return
    dist = _dist()
    for tensor in [*module.parameters(), *module.buffers()]:
        buffer = tensor.data if tensor.device == ctx.comm_device else tensor.data.to(ctx.comm_device)
        dist.broadcast(buffer, src=src)
        if buffer is not tensor.data:
            tensor.data.copy_(buffer)


def reduce_max_metrics(
    ctx: DistContext, metrics: dict[str, float], prefix: str = "time/"
) -> dict[str, float]:
    """The slowest rank's value for every metric under `prefix` (wall time is set by the slowest).

    Ranks may hold different keys (only rank 0 evaluates), so the values travel as objects."""
    if not ctx.active:
        return metrics
    mine = {k: float(v) for k, v in metrics.items() if k.startswith(prefix)}
    merged: dict[str, float] = {}
    for part in all_gather_object(ctx, mine):
        for key, value in part.items():
            merged[key] = max(value, merged.get(key, value))
    return metrics | merged


def param_fingerprint(params: Iterable[Tensor]) -> list[float]:
    """One float64 sum per tensor: equal lists on every rank means the replicas have not drifted."""
    return [float(p.detach().double().sum()) for p in params]


def check_in_sync(ctx: DistContext, params: Iterable[Tensor], what: str) -> None:
    """Raise (on every rank) when the replicas of `what` differ between ranks."""
    if not ctx.active:
        return
    prints = all_gather_object(ctx, param_fingerprint(params))
    bad = [rank for rank, fp in enumerate(prints) if fp != prints[0]]
    if bad:
        raise CagsrError(f"{what}: parameters of rank(s) {bad} differ from rank 0 (replicas drifted apart)")
