"""Faults around a run: SIGTERM saves a checkpoint and exits 0; a read-only or full disk is reported
before training starts; a checkpoint that cannot be written stops with a clear error and leaves the
previous checkpoints intact."""

import errno
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cagsr.config import from_dict, load_job, to_dict
from cagsr.errors import CagsrError
from cagsr.ppo import state as state_module
from cagsr.ppo.checkpoint import list_checkpoints
from cagsr.ppo.config import TrainJob
from cagsr.ppo.state import save_state
from cagsr.ppo.trainer import Trainer

FAST = ["--rollout.episodes", "2", "--rollout.turns", "1", "--ppo.epochs", "1", "--heldout.episodes", "1"]


def cagsr(*args: str) -> list[str]:
    return [sys.executable, "-m", "cagsr", "train", "--config", "tiny", *FAST, *args]


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        cagsr("--output-dir", str(run), "--ppo.iterations", "500", "--checkpoints.every", "1000"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = run / "metrics.jsonl"
    wait_for(lambda: metrics.exists() and metrics.read_text().count("\n") >= 1, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "stopped by SIGTERM, checkpoint saved" in err and "Traceback" not in err
    done = len(metrics.read_text().splitlines())
    (checkpoint,) = list_checkpoints(run / "checkpoints")
    assert checkpoint.name == f"step-{done:06d}"
    assert json.loads((checkpoint / "state.json").read_text())["iteration"] == done
    assert not (run / "model").exists()  # the run is not finished: resume continues it
    assert json.loads(out)["iterations"] == done


def _namespace_works() -> bool:
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True
    )
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(
    sys.platform != "linux" or not _namespace_works(),
    reason="needs `unshare -m` and tmpfs mounts (a private mount namespace)",
)


def run_with_mount(mount: str, folder: Path, argv: list[str]) -> subprocess.CompletedProcess:
    """argv inside a private mount namespace where `folder` is a fresh tmpfs set up by `mount`."""
    folder.mkdir(parents=True, exist_ok=True)
    script = f"{mount} && exec {shlex.join(argv)}"
    return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=600)


@needs_mounts
def test_read_only_run_folder_is_reported_before_training(tmp_path):
    disk = tmp_path / "disk"
    done = run_with_mount(
        f"mount -t tmpfs -o ro tmpfs {disk}", disk, cagsr("--output-dir", str(disk / "run"))
    )
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr.strip()
        == f"cagsr train: error: {disk / 'run'}: run folder is not writable (Read-only file system)"
    )


@needs_mounts
def test_full_disk_is_reported_before_training(tmp_path):
    disk = tmp_path / "disk"
    mount = f"mount -t tmpfs -o size=8m tmpfs {disk} && mkdir {disk}/runs"
    done = run_with_mount(mount, disk, cagsr("--output-dir", str(disk / "runs" / "run")))
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip()
    assert err.startswith(f"cagsr train: error: {disk / 'runs' / 'run'}: ") and "MiB free on its disk" in err
    assert "Traceback" not in err


@pytest.mark.slow
@needs_mounts
def test_disk_filling_up_during_the_run_is_a_clear_error(tmp_path):
    """Enough room at the start, then another program fills the disk: the checkpoint write fails cleanly."""
    disk, run = tmp_path / "disk", tmp_path / "disk" / "run"
    filler = (
        f"while [ ! -f {run}/metrics.jsonl ] || [ ! -s {run}/metrics.jsonl ]; do sleep 0.1; done; "
        f"dd if=/dev/zero of={disk}/filler bs=1M 2>/dev/null"
    )
    mount = f"mount -t tmpfs -o size=200m tmpfs {disk} && ( {filler} ) &"
    script = f"{mount} sleep 0; exec {shlex.join(cagsr('--output-dir', str(run), '--checkpoints.every', '2'))}"
    disk.mkdir(parents=True)
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    # A log writer thread may say so on a line of its own, before or after the main error.
    errors = [line for line in done.stderr.splitlines() if line.startswith("cagsr train: error:")]
    assert len(errors) == 1, done.stderr
    err = errors[0]
    assert err.startswith(f"cagsr train: error: {run}"), err
    assert "MiB free on its disk" in err or "No space left on device" in err


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    data = to_dict(load_job(TrainJob, "tiny", {}))
    data["run"] |= {"output_dir": str(tmp_path_factory.mktemp("faults") / "run"), "progress": False}
    data["checkpoints"] |= {"keep": 3}
    return Trainer(from_dict(TrainJob, data))


def test_a_failed_checkpoint_write_keeps_the_previous_ones(trainer, monkeypatch):
    first = save_state(trainer)
    trainer.state.iteration += 1

    def no_space(folder):
        (folder / "partial.bin").write_bytes(b"x" * 10)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real_save = state_module.save_checkpoint
    monkeypatch.setattr(
        state_module, "save_checkpoint", lambda root, it, write, keep: real_save(root, it, no_space, keep)
    )
    with pytest.raises(
        CagsrError, match=r"could not write the checkpoint of iteration 1 \(No space left on device\)"
    ):
        save_state(trainer)
    root = trainer.run_dir / "checkpoints"
    assert list_checkpoints(root) == [first]
    assert not list(root.glob(".tmp-*"))  # the half-written folder is gone
    assert (root / "latest").resolve() == first.resolve()


def test_too_little_space_for_a_checkpoint_is_refused_up_front(trainer, monkeypatch):
    monkeypatch.setattr(state_module.shutil, "disk_usage", lambda _: type("U", (), {"free": 1024})())
    before = list_checkpoints(trainer.run_dir / "checkpoints")
    with pytest.raises(CagsrError, match="0.0 MiB free on its disk, a checkpoint needs about"):
        save_state(trainer)
    assert list_checkpoints(trainer.run_dir / "checkpoints") == before
