"""Atomic, verifiable checkpoints: written to a temporary folder, hashed, synced, then renamed.

    checkpoints/step-000010/
        policy/ (save_pretrained)  trainer.pt (critic, optimizer, scheduler, RNG states of every rank)
        state.json (iteration, data position)  reward.yaml + reward-idf.json (the reward definition)
        MANIFEST.json (size and sha256 of each file)

    folder = save_checkpoint(root, iteration, write_files, keep=2)
    folder, problems = find_good_checkpoint(root)      # newest that verifies; bad ones are named

A kill at any moment leaves either the previous checkpoints or a complete new one (plus, at worst,
a `.tmp-step-*` folder that resume removes). A checkpoint whose files do not match its manifest
is reported by name and skipped on resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cagsr.errors import CagsrError

MANIFEST = "MANIFEST.json"
TEMP_PREFIX = ".tmp-step-"


class CheckpointError(CagsrError):
    """A checkpoint that is missing files or whose contents changed."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def rng_state() -> dict[str, Any]:
    """This process's global RNG states (python, numpy, torch, CUDA)."""
    return {
        "global_python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["global_python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync(path: Path) -> None:
    """Flush a file or folder to the disk, so a rename cannot outlive the data it points at."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _point_latest(root: Path, name: str) -> None:
    link = root / f".latest-{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(name)
    os.replace(link, root / "latest")  # atomic: `latest` always names a whole checkpoint


def save_checkpoint(root: Path, iteration: int, write_files: Callable[[Path], None], keep: int) -> Path:
    """write_files(folder) fills a temp folder; it is hashed, synced and renamed to step-NNNNNN."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=root))
    try:
        write_files(tmp)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest = {str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in files}
        (tmp / MANIFEST).write_text(json.dumps({"iteration": iteration, "files": manifest}, indent=1))
        for path in [*files, tmp / MANIFEST, *(p for p in tmp.rglob("*") if p.is_dir()), tmp]:
            _fsync(path)
        final = root / f"step-{iteration:06d}"
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        _fsync(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _point_latest(root, final.name)
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("step-*") if p.is_dir())


def remove_stale_temps(root: Path) -> list[Path]:
    """Delete half-written checkpoint folders left by a killed run; returns what was removed."""
    stale = [p for p in root.glob(f"{TEMP_PREFIX}*") if p.is_dir()]
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    return stale


def verify_checkpoint(folder: Path) -> None:
    """Raise CheckpointError naming the folder and the first bad file."""
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise CheckpointError(f"{folder}: no {MANIFEST} (incomplete checkpoint)")
    try:
        manifest = json.loads(manifest_path.read_text())
        entries = manifest["files"].items()
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
        raise CheckpointError(f"{manifest_path}: corrupted manifest") from None
    for name, meta in entries:
        path = folder / name
        if not path.exists():
            raise CheckpointError(f"{path}: missing from checkpoint")
        if path.stat().st_size != meta["bytes"]:
            raise CheckpointError(f"{path}: truncated ({path.stat().st_size} of {meta['bytes']} bytes)")
        if _sha256(path) != meta["sha256"]:
            raise CheckpointError(f"{path}: contents do not match the manifest (corrupted)")


def find_good_checkpoint(root: Path) -> tuple[Path | None, list[str]]:
    """Newest checkpoint that verifies, and a message for every newer one that did not."""
    problems = []
    for folder in reversed(list_checkpoints(root)):
        try:
            verify_checkpoint(folder)
            return folder, problems
        except CheckpointError as err:
            problems.append(str(err))
    return None, problems


def latest_good_checkpoint(root: Path, warn=print) -> Path | None:
    """Newest checkpoint that verifies; bad ones are reported with `warn` and skipped."""
    folder, problems = find_good_checkpoint(root)
    for problem in problems:
        warn(f"skipping bad checkpoint: {problem}")
    return folder
