"""Two CPU processes (gloo) with a global batch of N train the same parameters as one process with N.

Greedy decoding makes the rollouts of both runs identical, so the only differences left are float
summation orders (rows batched 2 instead of 4, rank gradients summed by all_reduce). Measured on
this machine after 2 iterations (8 optimizer steps at optimizer.lr 1e-4): policy max |diff| 7.9e-7, critic
1.1e-8, while the policy moved by 7.7e-4 from its start. ATOL = 5e-6 (about 6x the measured
difference, 1/150 of the movement).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cagsr.models import load_model

ATOL = 5e-6
COMMON = [
    "train",
    "--config",
    "tiny",
    "--model.device",
    "cpu",
    "--rollout.sampling.do_sample",
    "false",
    "--run.threads",
    "1",
    "--checkpoints.every",
    "1",
    "--optimizer.lr",
    "1e-4",
    "--optimizer.critic_lr",
    "1e-4",
]
ENV = os.environ | {"CAGSR_DIST_TIMEOUT_S": "180", "OMP_NUM_THREADS": "1"}
pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(prefix: list[str], run: Path, iterations: int, extra: list[str] = ()) -> subprocess.Popen:
    argv = [*prefix, *COMMON, *extra, "--ppo.iterations", str(iterations), "--output-dir", str(run)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return out


def policy(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def critic(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "latest" / "trainer.pt", weights_only=False)["critic"]


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process and two torchrun processes, 2 iterations each, started side by side."""
    root = tmp_path_factory.mktemp("equivalence")
    single = start([sys.executable, "-m", "cagsr"], root / "one", 2)
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "cagsr",
    ]
    double = start(torchrun, root / "two", 2)
    finish(single), finish(double)
    return root / "one", root / "two"


def test_two_processes_match_one_without_a_critic(tmp_path):
    """Groups of a record's episodes straddle the ranks' shards; advantages on the gathered batch make the
    critic-free run the same as one process. reinforce_pp: greedy rollouts tie every group, so a group
    baseline would train nothing, while its batch baseline moves the policy."""
    extra = ["--ppo.advantage", "reinforce_pp", "--rollout.group_size", "2"]
    single = start([sys.executable, "-m", "cagsr"], tmp_path / "one", 2, extra)
    double = start([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
                    "cagsr"], tmp_path / "two", 2, extra)
    finish(single), finish(double)
    one, two = tmp_path / "one", tmp_path / "two"
    start_weights = {k: v.float() for k, v in load_model("tiny-llama").model.state_dict().items()}
    trained = policy(one / "model")
    assert max_diff(trained, {k: start_weights[k] for k in trained}) > 50 * ATOL
    assert max_diff(trained, policy(two / "model")) <= ATOL
    assert critic(one) is None and critic(two) is None
    for a, b in zip(metrics(one), metrics(two), strict=True):
        assert b["batch/groups"] == a["batch/groups"] == 2.0
        for key in ("reward/return", "loss/policy", "policy/kl_ref"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key


def test_two_processes_match_one(runs):
    one, two = runs
    start_weights = {k: v.float() for k, v in load_model("tiny-llama").model.state_dict().items()}
    trained = policy(one / "model")
    moved = max_diff({k: trained[k] for k in trained}, {k: start_weights[k] for k in trained})
    assert moved > 50 * ATOL, "training must move the parameters far more than the tolerance"
    assert max_diff(policy(one / "model"), policy(two / "model")) <= ATOL
    assert max_diff(critic(one), critic(two)) <= ATOL
    m1, m2 = metrics(one), metrics(two)
    assert [m["step"] for m in m2] == [1, 2]  # rank 1 logged nothing
    assert [m["dist/world_size"] for m in m1] == [1.0, 1.0] and [m["dist/world_size"] for m in m2] == [
        2.0,
        2.0,
    ]
    for a, b in zip(m1, m2, strict=True):  # advantages are whitened over the whole batch on every rank
        for key in ("reward/reward", "reward/return", "loss/policy", "loss/value", "policy/kl_ref"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key
    samples = (two / "samples.jsonl").read_text().splitlines()
    assert len(samples) == len((one / "samples.jsonl").read_text().splitlines())


def test_accelerate_launch_starts_two_processes(runs, tmp_path):
    one, _ = runs
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        "-m",
        "cagsr",
    ]
    finish(start(launch, tmp_path / "acc", 1))
    assert [m["dist/world_size"] for m in metrics(tmp_path / "acc")] == [2.0]
    after_one = one / "checkpoints" / "step-000001" / "policy"  # the one-process run after 1 iteration
    assert max_diff(policy(after_one), policy(tmp_path / "acc" / "model")) <= ATOL


def test_two_nodes_launch_matches_one_process(runs, tmp_path):
    """Multi-node launch as on a cluster (--nnodes 2, a rendezvous at the master address), with both
    'nodes' on this machine: one torchrun agent per node, one process each."""
    one, _ = runs
    port = str(free_port())
    agents = [
        start(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                "2",
                "--node_rank",
                str(node),
                "--nproc_per_node",
                "1",
                "--master_addr",
                "127.0.0.1",
                "--master_port",
                port,
                "-m",
                "cagsr",
            ],
            tmp_path / "nodes",
            1,
        )
        for node in (0, 1)
    ]
    for agent in agents:
        finish(agent)
    assert [m["dist/world_size"] for m in metrics(tmp_path / "nodes")] == [2.0]
    after_one = one / "checkpoints" / "step-000001" / "policy"
    assert max_diff(policy(after_one), policy(tmp_path / "nodes" / "model")) <= ATOL


def test_fsdp_launch_shards_matches_one_process_and_resumes_exactly(runs, tmp_path):
    """`accelerate launch --use_fsdp`: the update trains shards (half the weights per rank) and still
    gives the one-process parameters; a resume from the first checkpoint ends bit-identical."""
    one, _ = runs
    launch = [
        sys.executable, "-m", "accelerate.commands.launch", "--use_fsdp", "--fsdp_version", "2",
        "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()), "-m", "cagsr",
    ]  # fmt: skip
    run = tmp_path / "fsdp"
    finish(start(launch, run, 2))
    logged = metrics(run)
    assert [m["dist/world_size"] for m in logged] == [2.0, 2.0]
    assert all(0.45 < m["dist/trained_share_per_rank"] < 0.6 for m in logged)  # sharded, not replicated
    assert max_diff(policy(one / "model"), policy(run / "model")) <= ATOL
    assert max_diff(critic(one), critic(run)) <= ATOL

    resumed = tmp_path / "resumed"
    shutil.copytree(run, resumed, symlinks=True)
    shutil.rmtree(resumed / "checkpoints" / "step-000002")
    shutil.rmtree(resumed / "model")
    (resumed / "checkpoints" / "latest").unlink()
    (resumed / "checkpoints" / "latest").symlink_to("step-000001")
    resume = [*launch[:-1], "cagsr", "train", "--resume", str(resumed)]
    resume[resume.index("--main_process_port") + 1] = str(free_port())
    finish(subprocess.Popen(resume, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV))
    assert max_diff(policy(run / "model"), policy(resumed / "model")) == 0.0
    assert max_diff(critic(run), critic(resumed)) == 0.0
