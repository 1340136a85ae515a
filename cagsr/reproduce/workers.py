"""Several processes on one reproduction (`cagsr reproduce --workers N`).

Every row-seed is trained and evaluated by exactly one process: the one holding its claim, an flock on the
row-seed's folder (and on a supervised model's folder while it is trained again). The kernel drops a claim
when its holder dies, however it dies, so a killed worker leaves nothing to clean up and its row-seed is
taken by the next process that asks. The invoking process and N - 1 helper processes first work ahead,
each skipping row-seeds another holds; then the invoking process alone reads every row-seed in table
order, waiting for those still held, so the table is the one a single process would have written.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def claim(folder: Path, wait: bool) -> Iterator[bool]:
    """Hold `folder`'s claim for the block. wait True: block until it is free, then yield True; wait False:
    yield False at once when another process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the last descriptor of the open file drops the flock


def start_helpers(count: int, target: Callable[..., None], kwargs: dict) -> list[multiprocessing.Process]:
    """`count` helper processes running target(**kwargs); spawned, so each loads its own models and threads."""
    context = multiprocessing.get_context("spawn")
    helpers = [context.Process(target=target, kwargs=kwargs, name=f"reproduce-helper-{k + 1}")
               for k in range(count)]
    for helper in helpers:
        helper.start()
    return helpers


def join_helpers(helpers: list[multiprocessing.Process]) -> None:
    """Wait for the helpers; one that failed is reported in a line (its unfinished row-seed was released with
    its claim, and the invoking process has run it while reading the table)."""
    for helper in helpers:
        helper.join()
        if helper.exitcode:
            print(f"cagsr reproduce: {helper.name} exited with code {helper.exitcode}; the row-seed it held was "
                  "run again by the invoking process", file=sys.stderr)


def stop_helpers(helpers: list[multiprocessing.Process]) -> None:
    """End helpers still running (the invoking process is stopping early: an error or an interrupt)."""
    for helper in helpers:
        if helper.is_alive():
            helper.terminate()
            helper.join()
