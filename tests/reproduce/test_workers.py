"""Several processes on one reproduction: claims on row-seed folders, and the passes that honour them. The
end-to-end run with --workers 2 is in test_reproduce.py (slow)."""

import subprocess
import sys
import time

import pytest

from cagsr.reproduce import pipeline
from cagsr.reproduce.plan import PLANS
from cagsr.reproduce.results import Reproduction
from cagsr.reproduce.tables import Row
from cagsr.reproduce.workers import claim

HOLD = """
import sys, time
from pathlib import Path
from cagsr.reproduce.workers import claim
with claim(Path(sys.argv[1]), wait=True):
    print("held", flush=True)
    time.sleep(600)
"""


def _holder(folder):
    """A process holding `folder`'s claim until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_claim_is_held_by_one_process_and_freed_when_it_dies(tmp_path):
    folder = tmp_path / "rows" / "a" / "seed-0"
    proc = _holder(folder)
    try:
        with claim(folder, wait=False) as held:
            assert not held
    finally:
        proc.kill()
        proc.wait()
    with claim(folder, wait=False) as held:  # the kernel dropped the dead holder's lock
        assert held
        with claim(folder, wait=False) as again:  # another descriptor, even in this process, is refused
            assert not again


def test_working_ahead_skips_a_held_row_seed_and_the_table_pass_waits_for_it(tmp_path, monkeypatch):
    ran, finished = [], set()

    def row_seed(row, seed, plan, ctx, rep, folder, done):
        ran.append((row.name, seed, done))
        finished.add(folder)
        rep.results.setdefault(row.name, []).append({})

    monkeypatch.setattr(pipeline, "_row_seed", row_seed)
    monkeypatch.setattr(pipeline, "_finished", lambda folder, plan, ctx: folder in finished)
    monkeypatch.setattr(pipeline, "_unavailable", lambda row, plan, ctx: None)
    rows, plan = [Row("a", core=True), Row("b")], PLANS["medium-v2"]
    ctx = type("Ctx", (), {"sets": {}, "sft": {k: tmp_path / "sft" / f"seed-{k}" / "model" for k in range(3)}})()

    def new_pass(wait):
        rep = Reproduction("cot", "medium-v2", tmp_path)
        return pipeline._Pass(plan, ctx, rep, time.perf_counter(), float("inf"), wait=wait)

    held = tmp_path / "rows" / "a" / "seed-1"
    proc = _holder(held)
    try:
        new_pass(wait=False).run(rows)
    finally:
        proc.kill()
        proc.wait()
    assert ran == [("a", 0, False), ("b", 0, False), ("a", 2, False)]  # a seed 1 was another's
    ran.clear()
    table = new_pass(wait=True)
    table.run(rows)  # the holder died without finishing: this pass runs it, in table order with the rest
    assert ran == [("a", 0, True), ("a", 1, False), ("b", 0, True), ("a", 2, True)]
    assert len(table.rep.results["a"]) == 3


def test_working_ahead_leaves_a_row_seed_whose_supervised_model_is_being_trained_to_the_end(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(pipeline, "_row_seed", lambda row, seed, *args: ran.append((row.name, seed)))
    monkeypatch.setattr(pipeline, "_finished", lambda folder, plan, ctx: False)
    monkeypatch.setattr(pipeline, "_unavailable", lambda row, plan, ctx: None)
    sft = {k: tmp_path / "sft" / f"seed-{k}" / "model" for k in range(3)}
    ctx = type("Ctx", (), {"sets": {}, "sft": sft})()
    ahead = pipeline._Pass(PLANS["medium-v2"], ctx, Reproduction("cot", "medium-v2", tmp_path),
                           time.perf_counter(), float("inf"), wait=False)
    proc = _holder(sft[1].parent)  # another process training supervised model 1 again
    try:
        ahead.run([Row("a", core=True), Row("b")])
    finally:
        proc.kill()
        proc.wait()
    assert ran == [("a", 0), ("b", 0), ("a", 2), ("a", 1)]


@pytest.mark.parametrize("workers", [0, -1])
def test_workers_below_one_is_refused_in_one_line(tmp_path, workers):
    out = subprocess.run([sys.executable, "-m", "cagsr", "reproduce", "--workers", str(workers),
                          "--output-dir", str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "workers" in out.stderr
