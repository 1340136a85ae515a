"""Run-level plumbing shared by every subcommand: the RunConfig, seeding, run folders, JSONL output.

    run = RunConfig(output_dir="runs/x", seed=0)
    seed_everything(run.seed)
    folder = prepare_run_dir(run.output_dir, job)   # writes config.yaml; clear error if not writable
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
import yaml

from cagsr.config import to_dict
from cagsr.errors import ConfigError


@dataclass
class RunConfig:
    output_dir: str | None = field(default=None, metadata={"flag": "--output-dir"})
    """Folder for everything the command writes (run folder); a timestamped one under runs/ if unset."""
    output: str | None = field(default=None, metadata={"flag": "--output"})
    """Write JSON Lines results to this file instead of standard output."""
    seed: int = field(default=0, metadata={"flag": "--seed"})
    """Seed for python, numpy and torch; the same seed reproduces a run."""
    threads: int | None = None
    """torch intra-op threads (None: torch's default)."""
    progress: bool = True
    """Show progress bars on standard error."""
    wandb: bool = False
    """Also log to Weights & Biases (needs the wandb package and a login)."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_run_dir(command: str) -> Path:
    from datetime import datetime

    return Path("runs") / f"{command}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def check_writable(folder: Path) -> None:
    """Fail before any work if the folder cannot be created or written (read-only, full disk)."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        with probe.open("wb") as handle:
            handle.write(b"\0" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as err:
        with contextlib.suppress(OSError):
            (folder / ".write-test").unlink()
        for path in created:  # leaf first: remove only the (empty) folders this check made
            with contextlib.suppress(OSError):
                path.rmdir()
        raise ConfigError(f"{folder}: run folder is not writable ({err.strerror or err})") from None


def prepare_run_dir(output_dir: str | None, command: str, job: Any) -> Path:
    """Create the run folder and save the resolved config as config.yaml."""
    folder = Path(output_dir) if output_dir else default_run_dir(command)
    check_writable(folder)
    (folder / "config.yaml").write_text(yaml.safe_dump(to_dict(job), sort_keys=False), encoding="utf-8")
    return folder


@contextmanager
def jsonl_sink(path: str | None):
    """Yield a write(record) function: JSON Lines to the file, or to standard output."""
    if path:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            handle: TextIO = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in finally
        except OSError as err:
            raise ConfigError(f"{path}: cannot write output ({err.strerror or err})") from None
    else:
        handle = sys.stdout
    try:
        def write(record: dict[str, Any]) -> None:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()

        yield write
    finally:
        if path:
            handle.close()
