"""Smoke-run the command line: help on every command, one-line errors with exit code 2."""

import json
import subprocess
import sys

import pytest

from cagsr.cli.main import available


def cagsr(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cagsr", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_top_level_help_lists_commands():
    out = cagsr("--help")
    assert out.returncode == 0 and "sft" in out.stdout and "train" in out.stdout


@pytest.mark.parametrize("command", sorted(available()))
def test_every_command_has_help(command):
    out = cagsr(command, "--help")
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout
    for line in out.stdout.splitlines():  # "  --workers INT, --workers INT" once listed a flag twice
        if line.startswith("  --"):
            flags = [part.split()[0] for part in line.strip().split("  ")[0].split(", ")]
            assert len(set(flags)) == len(flags), line


@pytest.mark.parametrize("args, message", [
    (["sft", "--max-steps", "-1"], "sft.max_steps: must be >= 1"),
    (["sft", "--bogus", "1"], "unrecognized arguments: --bogus"),
    (["train", "--optimizer.lr", "-0.1"], "optimizer.lr: must be > 0"),
    (["train", "--reward.kind", "nope", "--model", "tiny-llama"], "unknown reward 'nope'"),
    (["train", "--config", "missing.yaml"], "missing.yaml: config file not found"),
    (["sft", "--model", "no-such-model", "--max-steps", "1"], "no-such-model: not a preset"),
    (["nope"], "unknown command"),
])
def test_errors_are_one_line_with_exit_code_2(args, message, tmp_path):
    out = cagsr(*args, "--output-dir", str(tmp_path / "run")) if args[0] != "nope" else cagsr(*args)
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_data_command_summarises_and_flags_problems(tmp_path):
    out = cagsr("data", "--data", "generated:math", "--limit", "5")
    assert out.returncode == 0 and json.loads(out.stdout)["records"] == 5
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"turns": [{"role": "user", "text": "hi"}]}\n')
    out = cagsr("data", "--data", str(bad))
    assert out.returncode == 2 and json.loads(out.stdout)["problems"] == 1
    assert "bad.jsonl:1: dialogue is one-sided" in out.stderr


def test_sft_and_train_smoke_run(tmp_path):
    out = cagsr("sft", "--model", "tiny-llama", "--data", "generated:dialogue", "--data.num_generated", "8",
                "--max-steps", "2", "--sft.eval_every", "1", "--output-dir", str(tmp_path / "sft"),
                "--output", str(tmp_path / "samples.jsonl"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "sft" / "model" / "config.json").exists()
    assert json.loads((tmp_path / "samples.jsonl").read_text().splitlines()[0])["generated"] is not None
    out = cagsr("train", "--config", "tiny", "--model", str(tmp_path / "sft"), "--iterations", "1",
                "--output-dir", str(tmp_path / "ppo"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["iterations"] == 1
