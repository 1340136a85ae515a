"""Exact resume: a run killed with SIGKILL at a random moment and resumed ends bit for bit where an
uninterrupted run ends; a damaged checkpoint is named and the previous one is used instead."""

import json
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from cagsr.config import from_dict, load_job, to_dict
from cagsr.ppo.config import TrainJob
from cagsr.ppo.trainer import Trainer

SETTINGS = [
    "--rollout.episodes",
    "2",
    "--rollout.turns",
    "2",
    "--ppo.epochs",
    "1",
    "--heldout.episodes",
    "1",
    "--ppo.iterations",
    "6",
    "--checkpoints.every",
    "1",
    "--heldout.every",
    "3",
    "--run.threads",
    "1",
    "--seed",
    "7",
]


def train(run, *extra) -> subprocess.Popen:
    argv = [sys.executable, "-m", "cagsr", "train", *extra]
    argv += [] if "--resume" in extra else ["--config", "tiny", *SETTINGS, "--output-dir", str(run)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc) -> str:
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return err


def comparable(metrics_file) -> list[dict]:
    rows = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_same_tensors(a[key], b[key])
        elif torch.is_tensor(a[key]):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


@pytest.mark.slow
def test_sigkill_at_a_random_point_then_resume_is_bit_exact(tmp_path):
    seed = random.randrange(10**6)
    delay = random.Random(seed).uniform(0.0, 2.0)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    reference = train(straight)
    victim = train(killed)
    first = killed / "checkpoints" / "step-000001" / "MANIFEST.json"
    deadline = time.monotonic() + 300
    while not first.exists():
        assert victim.poll() is None, victim.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(delay)
    assert victim.poll() is None, f"the run finished before the kill (seed {seed})"
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert not (killed / "model").exists()
    finish(train(killed, "--resume", str(killed)))
    finish(reference)
    note = f"kill {delay:.2f}s after the first checkpoint (seed {seed})"
    for name in ("model.safetensors",):
        assert_same_tensors(
            load_file(str(straight / "model" / name)), load_file(str(killed / "model" / name))
        )
    blobs = [
        torch.load(run / "checkpoints" / "latest" / "trainer.pt", weights_only=False)
        for run in (straight, killed)
    ]
    for part in ("critic", "optimizer", "scheduler", "generator"):
        assert_same_tensors({part: blobs[0][part]}, {part: blobs[1][part]})
    assert comparable(straight / "metrics.jsonl") == comparable(killed / "metrics.jsonl"), note
    assert (straight / "samples.jsonl").read_text() == (killed / "samples.jsonl").read_text(), note


def make_job(run, **ppo):
    data = to_dict(load_job(TrainJob, "tiny", {}))
    data["run"] |= {"output_dir": str(run), "progress": False}
    data["rollout"] |= {"episodes": 2, "turns": 1}
    data["ppo"] |= {"epochs": 1, "iterations": 2} | ppo
    data["heldout"] |= {"episodes": 1}
    data["checkpoints"] |= {"every": 1}
    return from_dict(TrainJob, data)


def params(trainer):
    return [p.detach().clone() for p in trainer.models.learner.parameters()]


def test_a_corrupted_checkpoint_is_named_and_resume_uses_the_previous(tmp_path, capsys):
    run = tmp_path / "run"
    first = Trainer(make_job(run))
    first.train()
    final = params(first)
    damaged = run / "checkpoints" / "step-000002" / "trainer.pt"
    blob = bytearray(damaged.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    damaged.write_bytes(bytes(blob))
    resumed = Trainer(make_job(run), resume=run)
    err = capsys.readouterr().err
    assert f"skipping bad checkpoint: {damaged}: contents do not match the manifest (corrupted)" in err
    assert resumed.state.iteration == 1
    resumed.train()
    assert all(torch.equal(a, b) for a, b in zip(final, params(resumed), strict=True))
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
