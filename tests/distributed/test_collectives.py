"""Every collective of cagsr.distributed with two real gloo processes started by torchrun."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("collectives_worker.py")


@pytest.mark.distributed
def test_collectives_with_two_gloo_processes(tmp_path):
    env = os.environ | {"CAGSR_DIST_TIMEOUT_S": "120"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(WORKER),
        str(tmp_path),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for r, res in enumerate(ranks):
        assert (res["rank"], res["world"], res["backend"], res["is_main"]) == (r, 2, "gloo", r == 0)
        assert res["gathered"] == [{"rank": 0}, {"rank": 1}]
        assert res["broadcast"] == "from rank 0"
        assert res["main_first"] == "value of rank 0"
        assert res["main_first_error"] == "failure on rank 0"  # rank 1 stops with rank 0's message
        assert res["any_true"] is True and res["any_false"] is False
        assert res["weight_grad"] == [3.0] * 6  # 1 + 2
        assert res["bias_grad"] == [1.0, 1.0]  # 1 + a missing gradient
        assert res["in_sync_error"] is None
        assert "rank(s) [1] differ from rank 0" in res["drift_error"]
        assert res["max_metrics"] == {"time/a": 1.0, "loss": 1.0, "time/eval": 5.0}
    assert ranks[0]["weights_after_broadcast"] == ranks[1]["weights_after_broadcast"]
