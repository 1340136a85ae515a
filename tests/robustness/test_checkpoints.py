"""Checkpoint files on their own: atomic writes, keeping the last N, detecting damage by name."""

import json
import os

import pytest

from cagsr.ppo.checkpoint import (
    MANIFEST,
    CheckpointError,
    find_good_checkpoint,
    list_checkpoints,
    remove_stale_temps,
    save_checkpoint,
    verify_checkpoint,
)


def writer(payload: bytes):
    def write(folder):
        (folder / "sub").mkdir()
        (folder / "weights.bin").write_bytes(payload)
        (folder / "sub" / "state.json").write_text(json.dumps({"n": len(payload)}))

    return write


def test_keeps_the_last_n_and_points_latest_at_the_newest(tmp_path):
    for it in range(1, 6):
        save_checkpoint(tmp_path, it, writer(bytes([it]) * 100), keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000004", "step-000005"]
    assert os.readlink(tmp_path / "latest") == "step-000005"
    for folder in list_checkpoints(tmp_path):
        verify_checkpoint(folder)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_failing_write_leaves_no_trace(tmp_path):
    first = save_checkpoint(tmp_path, 1, writer(b"a" * 10), keep=3)

    def broken(folder):
        (folder / "weights.bin").write_bytes(b"half")
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        save_checkpoint(tmp_path, 2, broken, keep=3)
    assert list_checkpoints(tmp_path) == [first]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step-000001"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / "weights.bin").write_bytes(b"x" * 50), "weights.bin: truncated (50 of 100 bytes)"),
        (
            lambda f: (f / "weights.bin").write_bytes(b"y" * 100),
            "weights.bin: contents do not match the manifest",
        ),
        (lambda f: (f / "sub" / "state.json").unlink(), "sub/state.json: missing from checkpoint"),
        (lambda f: (f / MANIFEST).unlink(), f"step-000002: no {MANIFEST} (incomplete checkpoint)"),
        (lambda f: (f / MANIFEST).write_text("{not json"), f"{MANIFEST}: corrupted manifest"),
        (lambda f: (f / MANIFEST).write_text("[]"), f"{MANIFEST}: corrupted manifest"),
    ],
    ids=["truncated", "flipped", "missing_file", "no_manifest", "bad_manifest", "manifest_wrong_shape"],
)
def test_damage_is_named_and_the_previous_checkpoint_is_used(tmp_path, damage, message):
    first = save_checkpoint(tmp_path, 1, writer(b"a" * 100), keep=3)
    second = save_checkpoint(tmp_path, 2, writer(b"b" * 100), keep=3)
    damage(second)
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")):
        verify_checkpoint(second)
    folder, problems = find_good_checkpoint(tmp_path)
    assert folder == first
    assert len(problems) == 1 and str(second) in problems[0] and message in problems[0]


def test_nothing_good_reports_every_problem(tmp_path):
    for it in (1, 2):
        save_checkpoint(tmp_path, it, writer(b"c" * 100), keep=3)
        (tmp_path / f"step-{it:06d}" / "weights.bin").write_bytes(b"")
    folder, problems = find_good_checkpoint(tmp_path)
    assert folder is None and len(problems) == 2


def test_half_written_temporary_folders_are_removed(tmp_path):
    save_checkpoint(tmp_path, 1, writer(b"a"), keep=2)
    stale = tmp_path / ".tmp-step-abc123"
    stale.mkdir()
    (stale / "weights.bin").write_bytes(b"partial")
    assert remove_stale_temps(tmp_path) == [stale]
    assert not stale.exists() and len(list_checkpoints(tmp_path)) == 1
