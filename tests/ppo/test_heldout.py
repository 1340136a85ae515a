"""The before/after table: per-episode held-out rows, bootstrap intervals, and what `cagsr train` prints."""

import json
import math
import re

import pytest

import cagsr.api as api
from cagsr.api import build_job
from cagsr.cli.main import main
from cagsr.evaluation.analysis.bootstrap import bootstrap_change, bootstrap_mean
from cagsr.ppo.config import TrainJob
from cagsr.ppo.heldout import before_after, read_rows, render_table
from cagsr.ppo.replies import before_after_replies, read_replies
from cagsr.ppo.trainer import Trainer


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


SMALL = ["--run.threads", "1", "--ppo.iterations", "2", "--ppo.epochs", "1", "--rollout.episodes", "2",
         "--rollout.turns", "1", "--heldout.episodes", "2", "--optimizer.lr", "0.01"]


def test_train_ends_with_the_table_the_replies_and_the_report(tmp_path, capsys):
    run = tmp_path / "run"
    main(["train", "--config", "tiny", *SMALL, "--output-dir", str(run)])
    out, err = capsys.readouterr()
    assert "# Held-out metrics before and after training" in err and "| kl_ref_k3 |" in err
    assert "| kl_ref |" not in err  # k1 can be negative on a sample: logs only
    assert f"report: {run / 'report.html'}" in err
    assert json.loads(out.splitlines()[-1])["report"] == str(run / "report.html")
    page = (run / "report.html").read_text()
    assert page.count("Held-out metrics before and after training") == 1
    assert page.count("The same held-out prompts, before and after training") == 1
    table = (run / "table.md").read_text()
    metrics_part, _, replies_part = table.partition("# The same held-out prompts")
    assert metrics_part.strip() in err and "| prompt | before (0) | after (2) |" in replies_part
    replies_at = err.index("The same held-out prompts, greedy, before (0 PPO updates) and after (2):")
    assert err.index(f"report: {run / 'report.html'}") < err.index("# Held-out metrics") < replies_at
    assert err.rstrip().splitlines()[-1].startswith("   after: ")  # the terminal ends with the replies
    rows = read_rows(run)
    first = [r for r in rows if r["updates"] == 0]
    last = [r for r in rows if r["updates"] == 2]
    assert len(first) == len(last) == 2 and [r["episode"] for r in first] == [r["episode"] for r in last]
    assert all(abs(r["kl_ref"]) < 1e-5 and abs(r["kl_ref_k3"]) < 1e-5 for r in first)  # policy = reference
    assert all(r["kl_ref_k3"] >= 0 for r in rows)
    assert {"reward", "coverage", "focus", "repetition", "response_words"} <= set(first[0])
    replies = read_replies(run)
    assert [r["updates"] for r in replies] == [0, 0, 2, 2]  # heldout.replies = 2 prompts, both ends
    assert [r["episode"] for r in replies[:2]] == [r["episode"] for r in replies[2:]]
    assert [u["text"] for u in replies[0]["conversation"] if u["role"] == "user"] == \
        [u["text"] for u in replies[2]["conversation"] if u["role"] == "user"]  # the same prompts


def test_greedy_replies_repeat_exactly_while_the_weights_do_not_change(tmp_path):
    """The before/after pairs show what training changed, not sampling noise: with the same weights the
    greedy replies to the same prompts are the same."""
    trainer = Trainer(build_job(TrainJob, "tiny", {"run.output_dir": str(tmp_path / "run"), "run.threads": 1}))
    trainer.answer_held_out(updates=0)
    trainer.answer_held_out(updates=0)
    pairs = before_after_replies(read_replies(trainer.run_dir))
    turns = [t for ep in pairs["episodes"] for t in ep["turns"]]
    assert len(pairs["episodes"]) == 2 and turns and all(t["before"] == t["after"] for t in turns)


def test_the_number_of_greedy_replies_is_its_own_setting(tmp_path):
    job = build_job(TrainJob, "tiny", {"run.output_dir": str(tmp_path / "run"), "run.threads": 1,
                                       "heldout.replies": 1, "heldout.samples": 3})
    trainer = Trainer(job)
    trainer.answer_held_out(updates=0)
    assert len(read_replies(trainer.run_dir)) == 1


def test_the_api_and_the_command_leave_the_same_run_folder(tmp_path, capsys):
    """cagsr.api.train runs the same job as `cagsr train`: the same files, the same table rows."""
    main(["train", "--config", "tiny", *SMALL, "--output-dir", str(tmp_path / "cli")])
    capsys.readouterr()
    overrides = {SMALL[i].removeprefix("--"): SMALL[i + 1] for i in range(0, len(SMALL), 2)}
    result = api.train("tiny", overrides | {"run.output_dir": str(tmp_path / "api")})
    cli, via_api = tmp_path / "cli", tmp_path / "api"
    assert files(cli) == files(via_api)
    assert rows_of(cli / "table.md") == rows_of(via_api / "table.md") and rows_of(cli / "table.md")
    assert result.table and result.report == via_api / "report.html"


def files(run) -> set[str]:
    """Relative paths, TensorBoard's event file named without its host and time stamp."""
    return {re.sub(r"events\.out\.tfevents\..*", "events.out.tfevents", str(p.relative_to(run)))
            for p in run.rglob("*") if p.is_file()}


def rows_of(table) -> list[str]:
    return [line for line in table.read_text().splitlines() if line.startswith("|")]
