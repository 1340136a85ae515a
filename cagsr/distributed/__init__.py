"""Multi-process (torchrun / accelerate launch) data-parallel training support.

    from cagsr.distributed import init_distributed, shard_bounds, all_gather_object
    ctx = init_distributed()     # a world of one without a launcher

See docs/distributed.md for launching on one or several nodes.
"""

from cagsr.distributed.context import (
    SINGLE,
    DistContext,
    check_launch,
    choose_backend,
    init_distributed,
    shutdown,
)
from cagsr.distributed.ops import (
    all_gather_object,
    all_reduce_,
    all_reduce_grads,
    any_true,
    barrier,
    broadcast_module,
    broadcast_object,
    check_in_sync,
    main_first,
    param_fingerprint,
    reduce_max_metrics,
    shard,
    shard_bounds,
)

__all__ = [
    "SINGLE",
    "DistContext",
    "all_gather_object",
    "all_reduce_",
    "all_reduce_grads",
    "any_true",
    "barrier",
    "broadcast_module",
    "broadcast_object",
    "check_in_sync",
    "check_launch",
    "choose_backend",
    "init_distributed",
    "main_first",
    "param_fingerprint",
    "reduce_max_metrics",
    "shard",
    "shard_bounds",
    "shutdown",
]
