"""A row-seed's cost: the wall seconds of every invocation that worked on it, summed in its seconds.json.

The file is written every minute while the work runs, not only at its end: a run killed mid-row-seed (a
session that ends, a lost machine) would otherwise lose the time it spent there, and the table's compute
line would undercount exactly the row-seeds that cost most.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SECONDS_FILE = "seconds.json"


def saved_seconds(folder: Path) -> float:
    """The row-seed's seconds so far (0 when nothing has worked on it)."""
    path = folder / SECONDS_FILE
    return float(json.loads(path.read_text())) if path.exists() else 0.0


def _write(folder: Path, total: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{SECONDS_FILE}.part"
    part.write_text(json.dumps(total))
    os.replace(part, folder / SECONDS_FILE)  # a kill between two writes leaves the previous total whole


@contextmanager
def counted_seconds(folder: Path, count: bool = True, every: float = 60.0) -> Iterator[None]:
    """Add the block's wall seconds to the folder's total, written every `every` seconds and at the end (also
    when the block raises). `count` False only reads: reloading a finished row-seed is not part of its cost."""
    if not count:
        yield
        return
    before, start = saved_seconds(folder), time.perf_counter()
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(every):
            _write(folder, before + time.perf_counter() - start)

    ticker = threading.Thread(target=tick, name="row-seed-seconds", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()
        _write(folder, before + time.perf_counter() - start)
