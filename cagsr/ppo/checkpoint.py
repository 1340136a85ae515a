"""Atomic, verifiable checkpoints: written to a temporary folder, hashed, then renamed.

    checkpoints/step-000010/
        policy/ (save_pretrained)  trainer.pt (critic, optimizer, scheduler, RNG states)
        state.json (iteration, data position)  salience.json idf.json  MANIFEST.json (sha256 of each file)

A checkpoint whose files do not match its manifest is reported by name and skipped on resume.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cagsr.errors import CagsrError

MANIFEST = "MANIFEST.json"


class CheckpointError(CagsrError):
    """A checkpoint that is missing files or whose contents changed."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def rng_state(py_rng: random.Random) -> dict[str, Any]:
    return {"python": py_rng.getstate(), "global_python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def restore_rng(state: dict[str, Any], py_rng: random.Random) -> None:
    py_rng.setstate(state["python"])
    random.setstate(state["global_python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(root: Path, iteration: int, write_files, keep: int) -> Path:
    """write_files(folder) fills a temp folder; it is hashed and renamed to step-NNNNNN atomically."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-step-", dir=root))
    try:
        write_files(tmp)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest = {str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in files}
        (tmp / MANIFEST).write_text(json.dumps({"iteration": iteration, "files": manifest}, indent=1))
        final = root / f"step-{iteration:06d}"
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (root / "latest").unlink(missing_ok=True)
    (root / "latest").symlink_to(final.name)
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("step-*") if p.is_dir())


def verify_checkpoint(folder: Path) -> None:
    """Raise CheckpointError naming the folder and the first bad file."""
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise CheckpointError(f"{folder}: no {MANIFEST} (incomplete checkpoint)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError:
        raise CheckpointError(f"{manifest_path}: corrupted manifest") from None
    for name, meta in manifest["files"].items():
        path = folder / name
        if not path.exists():
            raise CheckpointError(f"{path}: missing from checkpoint")
        if path.stat().st_size != meta["bytes"]:
            raise CheckpointError(f"{path}: truncated ({path.stat().st_size} of {meta['bytes']} bytes)")
        if _sha256(path) != meta["sha256"]:
            raise CheckpointError(f"{path}: contents do not match the manifest (corrupted)")


def latest_good_checkpoint(root: Path, warn=print) -> Path | None:
    """Newest checkpoint that verifies; bad ones are reported and skipped."""
    for folder in reversed(list_checkpoints(root)):
        try:
            verify_checkpoint(folder)
            return folder
        except CheckpointError as err:
            warn(f"skipping bad checkpoint: {err}")
    return None
