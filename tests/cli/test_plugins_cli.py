"""User plugins from the command line: a reward, a user simulator and a salience source in a file, named by
path; a combined reward with every part logged; bad paths and signatures as one line, exit code 2, no run."""

import json
import subprocess
import sys

import pytest

PLUGINS = '''
import re

from cagsr.reward.registry import turn_tensor


def politeness(episodes, job):
    return turn_tensor(episodes, lambda ep, t: float("please" in ep.turn_texts[t].lower()) + 0.25)


def wrong_signature(episodes):
    return None


class EchoUser:
    def __init__(self, seed=0):
        self.seed = seed

    def next_user_turns(self, episodes):
        return [f"Sorry, say that again please ({self.seed})." for ep in episodes]


class NeedsSecret:
    def __init__(self, secret):
        pass


def numbers(text):
    return [m.span() for m in re.finditer(r"[0-9]+", text)]
'''

FAST = ["--config", "tiny", "--run.threads", "1", "--rollout.episodes", "2", "--ppo.epochs", "1",
        "--heldout.episodes", "2"]


def cagsr(*args, cwd):
    return subprocess.run([sys.executable, "-m", "cagsr", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.fixture
def plugins(tmp_path):
    (tmp_path / "my_plugins.py").write_text(PLUGINS)
    return tmp_path


def test_user_reward_simulator_and_salience_in_a_combined_reward_run(plugins):
    run = plugins / "run"
    out = cagsr("train", *FAST, "--iterations", "1", "--heldout.every", "1", "--output-dir", str(run),
                "--reward.parts", "attention,0.5*my_plugins.py:politeness,-0.01*length",
                "--rollout.simulator", "my_plugins.py:EchoUser",
                "--salience.sources", "idf|entities|keywords|my_plugins.py:numbers", cwd=plugins)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logged = {k: v for row in rows for k, v in row.items()}
    for part in ("attention", "politeness", "length"):
        assert f"reward/{part}" in logged and f"eval/{part}" in logged, sorted(logged)
    assert logged["reward/politeness"] >= 0.25  # the user's function ran: every turn gets at least 0.25
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    users = [t for s in samples for t in json.dumps(s).split('"') if t.startswith("Sorry, say that again")]
    assert users, "the user simulator from the file spoke no turn"
    saved = (run / "config.yaml").read_text()
    assert "my_plugins.py:politeness" in saved and "my_plugins.py:EchoUser" in saved


@pytest.mark.parametrize("flags, message", [
    (["--reward.kind", "missing.py:fn"], "reward.kind: missing.py:fn: no such file 'missing.py'"),
    (["--reward.kind", "my_plugins.py:wrong_signature"],
     "reward.kind: my_plugins.py:wrong_signature has the signature (episodes), expected fn(episodes"),
    (["--reward.kind", "no_such_pkg_xyz.rewards:fn"], "no module named 'no_such_pkg_xyz'"),
    (["--reward.parts", "attention,x*length"], "reward.parts: 'x*length': expected WEIGHT*NAME"),
    (["--rollout.simulator", "my_plugins.py:NeedsSecret"],
     "rollout.simulator: my_plugins.py:NeedsSecret has the signature (secret)"),
    (["--salience.sources", "idf|my_plugins.py:missing"], "salience.sources: my_plugins.py:missing: 'my_plugins.py' "
                                                         "has no attribute 'missing'"),
    (["--rollout.engine", "my_plugins.py:numbers.nope"], "rollout.engine: my_plugins.py:numbers.nope"),
])
def test_bad_plugins_are_one_line_exit_2_and_no_run_folder(plugins, flags, message):
    run = plugins / "run"
    out = cagsr("train", *FAST, "--output-dir", str(run), *flags, cwd=plugins)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and message in lines[0], out.stderr
    assert not run.exists()
