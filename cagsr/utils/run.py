"""Run-level plumbing shared by every subcommand: the RunConfig, seeding, run folders, JSONL output.

    run = RunConfig(output_dir="runs/x", seed=0)
    seed_everything(run.seed)
    check_run_dir(run.output_dir, run.overwrite)    # early, writes nothing: refuses an earlier run's folder
    folder = prepare_run_dir(run.output_dir, "train", job)   # locks, clears on overwrite, writes config.yaml

A run folder holds one run: a second run into it is refused unless it resumes the run (--resume) or
asks to replace it (--run.overwrite true, which clears the folder first), and a lock file held for the
life of the process makes a second process on the same folder fail at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import shutil
import sys
from collections.abc import Callable
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
    overwrite: bool = False
    """Replace the run already in --output-dir (its files are deleted first); without it such a folder is
    refused (train --resume continues it instead)."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


RUN_MARKER = "config.yaml"  # every command that writes a run folder writes this first
_HELD: dict[Path, int] = {}  # folder -> open descriptor of the folder, flock-ed; released when the process ends


def default_run_dir(command: str) -> Path:
    """runs/COMMAND-YYYYmmdd-HHMMSS, with a -2, -3 ... suffix if a run started in the same second."""
    from datetime import datetime

    base = Path("runs") / f"{command}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def _contents(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.is_dir() else []


def _try_lock(folder: Path) -> int | None:
    """An flock-ed descriptor of the folder itself (no lock file: the folder stays as the run left it), or
    None when another process holds it. The kernel drops the lock when its holder exits, however it exits."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _held_here(folder: Path) -> bool:
    fd = _HELD.get(folder.resolve())
    if fd is None:
        return False
    try:  # the folder may have been deleted and made again since: then the lock is on a dead inode
        if os.fstat(fd).st_ino == os.stat(folder).st_ino:
            return True
    except OSError:
        pass
    release_run_dir(folder)
    return False


def _locked_by_another(folder: Path) -> bool:
    """Whether another process holds the folder's lock (tested without keeping it)."""
    if not folder.is_dir() or _held_here(folder):
        return False
    try:
        fd = _try_lock(folder)
    except OSError:
        return False
    if fd is None:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    return False


def _in_use(folder: Path) -> ConfigError:
    return ConfigError(f"{folder}: another cagsr process is writing this run folder; wait for it to finish "
                       "or choose another --output-dir")


def check_run_dir(output_dir: str | Path | None, overwrite: bool = False, resume: bool = False) -> None:
    """Refuse, before any work and without writing anything, a folder another process is writing, or one
    that already holds a run (unless resuming it or overwriting it), or a non-run folder to overwrite."""
    if output_dir is None:
        return  # a fresh default folder is always free
    folder = Path(output_dir)
    if _locked_by_another(folder):
        raise _in_use(folder)
    contents = _contents(folder)
    if resume or not contents:
        return
    if not (folder / RUN_MARKER).exists():
        raise ConfigError(f"{folder}: folder is not empty and holds no cagsr run; choose an empty or new "
                          "--output-dir (--run.overwrite only replaces a cagsr run)")
    if not overwrite:
        raise ConfigError(f"{folder}: already holds a run; pass --run.overwrite true to replace it, --resume "
                          f"{folder} to continue it (train), or choose another --output-dir")


def lock_run_dir(folder: Path) -> None:
    """Hold the folder's lock until this process ends (or release_run_dir); another holder fails at once."""
    if _held_here(folder):
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = _try_lock(folder)
    if fd is None:
        raise _in_use(folder)
    _HELD[folder.resolve()] = fd


def release_run_dir(folder: Path) -> None:
    """Let the folder go before the process ends (a long-lived process that ran a job into it)."""
    fd = _HELD.pop(Path(folder).resolve(), None)
    if fd is not None:
        os.close(fd)


def clear_run_dir(folder: Path) -> None:
    """Delete an earlier run's files (the folder itself stays: its lock is held on it)."""
    for path in _contents(folder):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


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
    """Claim the run folder (refuse an earlier run unless job.run.overwrite, lock it, clear it on
    overwrite) and save the resolved config as config.yaml."""
    overwrite = bool(getattr(getattr(job, "run", None), "overwrite", False))
    check_run_dir(output_dir, overwrite)
    folder = Path(output_dir) if output_dir else default_run_dir(command)
    check_writable(folder)
    lock_run_dir(folder)
    check_run_dir(folder, overwrite)  # again under the lock: a run may have started since the first check
    if overwrite:
        clear_run_dir(folder)
    (folder / RUN_MARKER).write_text(yaml.safe_dump(to_dict(job), sort_keys=False), encoding="utf-8")
    return folder


def prepare_resumable_dir(output_dir: str | Path, job: Any, same_job: Callable[[dict], bool],
                          legacy: tuple[str, ...] = (), read_only: bool = False) -> Path:
    """Claim a folder that a rerun of the same job continues (reproduce skips finished rows): locked for
    the process; a run of another job in it is refused unless job.run.overwrite (then cleared first).
    `same_job(saved config)` says whether the saved run is this one; a folder without config.yaml that
    holds one of the `legacy` entries (written before config.yaml was) counts as the same job.
    `read_only`: the folder must already hold this job's run, and its config.yaml is kept (a render)."""
    folder = Path(output_dir)
    overwrite = bool(getattr(getattr(job, "run", None), "overwrite", False)) and not read_only
    if read_only and not _contents(folder):
        raise ConfigError(f"{folder}: holds no run to render; run the command without --render-only first")
    check_writable(folder)
    lock_run_dir(folder)
    marker = folder / RUN_MARKER
    if _contents(folder):
        if marker.exists():
            try:
                same = same_job(yaml.safe_load(marker.read_text(encoding="utf-8")) or {})
            except (OSError, yaml.YAMLError):
                same = False
        else:
            same = any((folder / name).exists() for name in legacy)
            if not same:
                check_run_dir(folder, overwrite)  # raises: not empty, no run (never cleared, even on overwrite)
        if overwrite:
            clear_run_dir(folder)
        elif not same:
            raise ConfigError(f"{folder}: already holds another run; pass --run.overwrite true to replace it, "
                              "or choose another --output-dir")
    if not read_only:
        (folder / RUN_MARKER).write_text(yaml.safe_dump(to_dict(job), sort_keys=False), encoding="utf-8")
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
