"""The before/after table: per-episode held-out rows, bootstrap intervals, and what `cagsr train` prints."""

import json
import math

import pytest

from cagsr.cli.main import main
from cagsr.ppo.heldout import before_after, bootstrap_change, bootstrap_mean, read_rows, render_table


def block(name, updates, rewards):
    return [{"block": name, "updates": updates, "episode": f"e{i}", "turns": 2.0, "reward": r, "kl_ref": 0.0}
            for i, r in enumerate(rewards)]


def test_intervals_cover_the_mean_and_pairing_removes_episode_spread():
    before = [0.1, 0.5, 0.9, 0.3, 0.7]
    after = [b + 0.05 for b in before]  # every episode gains the same: the paired change is exact
    mean, low, high = bootstrap_mean(before)
    assert low <= mean <= high and low < high
    assert bootstrap_change(before, after, paired=True) == pytest.approx((0.05, 0.05, 0.05))
    unpaired = bootstrap_change(before, after, paired=False)
    assert unpaired[1] < 0 < unpaired[2]  # unpaired, the episodes' spread swamps the gain
    assert bootstrap_mean([2.0]) == (2.0, 2.0, 2.0) and all(math.isnan(v) for v in bootstrap_mean([]))


def test_table_compares_the_first_and_the_last_evaluation():
    rows = block("a", 0, [0.1, 0.2]) + block("b", 3, [0.2, 0.3]) + block("c", 5, [0.4, 0.5])
    table = before_after(rows)
    assert (table["before"], table["after"], table["episodes"]) == (0, 5, 2)
    reward = next(m for m in table["metrics"] if m["name"] == "reward")
    assert reward["before"][0] == pytest.approx(0.15) and reward["change"][0] == pytest.approx(0.3)
    text = render_table(table)
    assert "| reward | +0.1500 [" in text and "before: 0 PPO updates, after: 5" in text
    assert before_after(block("a", 0, [0.1])) is None  # one evaluation: nothing to compare


def test_train_ends_with_the_table_and_the_report(tmp_path, capsys):
    run = tmp_path / "run"
    main(["train", "--config", "tiny", "--run.threads", "1", "--ppo.iterations", "2", "--ppo.epochs", "1",
          "--rollout.episodes", "2", "--rollout.turns", "1", "--ppo.eval_episodes", "2", "--output-dir", str(run)])
    out, err = capsys.readouterr()
    assert "# Held-out metrics before and after training" in err and "| kl_ref |" in err
    assert f"report: {run / 'report.html'}" in err
    assert json.loads(out.splitlines()[-1])["report"] == str(run / "report.html")
    assert (run / "report.html").read_text().count("Held-out metrics before and after training") == 1
    assert (run / "table.md").read_text() in err
    rows = read_rows(run)
    first = [r for r in rows if r["updates"] == 0]
    last = [r for r in rows if r["updates"] == 2]
    assert len(first) == len(last) == 2 and [r["episode"] for r in first] == [r["episode"] for r in last]
    assert all(abs(r["kl_ref"]) < 1e-5 for r in first)  # before any update the policy is the reference
    assert {"reward", "coverage", "focus", "repetition", "response_words"} <= set(first[0])
