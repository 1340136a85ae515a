"""Bad inputs a new user hits first: a damaged model folder, a report of a folder that holds no run, a
reward part that returns NaN, and a run whose every batch was skipped. Each gives one line, not a
traceback, an empty page or a "trained" model that never trained."""

import os
import subprocess
import sys
import textwrap

import pytest

from cagsr.cli.main import main


@pytest.mark.parametrize("text, expect", [
    ('{"model_type": "llama",\n', "config.json:2: invalid JSON (Expecting property name"),
    ("[1, 2]\n", "config.json: expected a JSON object, got list"),
    ('{"model_type": "no_such_architecture"}\n', "cannot load the model (The checkpoint you are trying to load"),
])
def test_a_damaged_model_folder_gives_one_line_naming_the_file(tmp_path, capsys, text, expect):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        main(["reward", "--model", str(folder), "--data", "generated:dialogue", "--limit", "1",
              "--output-dir", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"cagsr reward: error: {folder}") and expect in err


def test_report_of_a_folder_that_holds_no_run_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a run")
    page = tmp_path / "report.html"
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path), "--output", str(page)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.strip() == f"cagsr report: error: {tmp_path}: not a cagsr run folder (no config.yaml, metrics " \
                          "or tables to report)"
    assert not page.exists()


POLITENESS = textwrap.dedent("""
    from cagsr.reward.registry import turn_tensor

    def politeness(episodes, job):
        return turn_tensor(episodes, lambda ep, t: float("nan"))
""")


def test_a_nan_part_is_named_in_one_line_warnings_and_a_run_that_skipped_every_batch_fails(tmp_path):
    """Through a real terminal: each skip is one line naming the part (no Python source line), and the run
    fails with one line instead of saving an untrained model."""
    (tmp_path / "my_rewards.py").write_text(POLITENESS)
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "cagsr", "train", "--config", "tiny", "--output-dir", str(run),
            "--reward.parts", f"attention,0.2*{tmp_path / 'my_rewards.py'}:politeness", "--ppo.iterations", "2",
            "--ppo.max_bad_batches", "5", "--heldout.every", "9", "--rollout.episodes", "2", "--rollout.turns", "1",
            "--ppo.epochs", "1", "--heldout.episodes", "1", "--run.threads", "1", "--run.progress", "false"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=os.environ.copy(), check=False)
    reason = "reward/politeness returned NaN for 2 of 2 turns"
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        f"cagsr train: warning: iteration 1: {reason}: batch skipped (1 so far)",
        f"cagsr train: warning: iteration 2: {reason}: batch skipped (2 so far)",
        f"cagsr train: error: all 2 batches of this run were skipped for NaN/Inf values ({reason}); nothing was "
        "trained and no model was written (check the data and reward)",
    ]
    assert not (run / "model").exists()
