"""Run by torchrun from test_collectives.py: exercises every collective with gloo, writes rank{r}.json.

python -m torch.distributed.run --standalone --nproc_per_node 2 tests/distributed/collectives_worker.py OUT
"""

import json
import sys
from pathlib import Path

import torch

from cagsr.distributed import (
    all_gather_object,
    all_reduce_grads,
    any_true,
    broadcast_module,
    broadcast_object,
    check_in_sync,
    init_distributed,
    main_first,
    reduce_max_metrics,
    shutdown,
)
from cagsr.errors import CagsrError


def error_message(action) -> str | None:
    try:
        action()
    except CagsrError as err:
        return str(err)
    return None


def run(out: Path) -> dict:
    ctx = init_distributed("cpu")
    r = ctx.rank
    result = {"rank": r, "world": ctx.world, "backend": ctx.backend, "is_main": ctx.is_main}
    result["gathered"] = all_gather_object(ctx, {"rank": r})
    result["broadcast"] = broadcast_object(ctx, f"from rank {r}")
    result["main_first"] = main_first(ctx, lambda: f"value of rank {r}")
    result["main_first_error"] = error_message(
        lambda: main_first(ctx, lambda: (_ for _ in ()).throw(CagsrError(f"failure on rank {r}")))
    )
    result["any_true"] = any_true(ctx, r == 1)
    result["any_false"] = any_true(ctx, False)

    torch.manual_seed(100 + r)  # different weights per rank until broadcast_module
    layer = torch.nn.Linear(3, 2)
    broadcast_module(ctx, layer)
    result["weights_after_broadcast"] = layer.weight.flatten().tolist()
    layer.weight.grad = torch.full_like(layer.weight, float(r + 1))
    layer.bias.grad = None if r == 1 else torch.ones_like(layer.bias)  # a missing grad counts as zeros
    all_reduce_grads(ctx, layer.parameters())
    result["weight_grad"] = layer.weight.grad.flatten().tolist()
    result["bias_grad"] = layer.bias.grad.tolist()

    result["in_sync_error"] = error_message(lambda: check_in_sync(ctx, layer.parameters(), "layer"))
    with torch.no_grad():
        if r == 1:
            layer.weight[0, 0] += 1e-6
    result["drift_error"] = error_message(lambda: check_in_sync(ctx, layer.parameters(), "layer"))
    metrics = {"time/a": float(r), "loss": 1.0} | ({"time/eval": 5.0} if r == 0 else {})
    result["max_metrics"] = reduce_max_metrics(ctx, metrics)
    (out / f"rank{r}.json").write_text(json.dumps(result))
    shutdown()
    return result


if __name__ == "__main__":
    run(Path(sys.argv[1]))
