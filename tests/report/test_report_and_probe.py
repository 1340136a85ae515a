"""`cagsr reward` (scores + heatmaps), `cagsr eval` and `cagsr report` on tiny models."""

import json
import subprocess
import sys

from cagsr.report.page import build_report, markdown_table


def cagsr(*args):
    return subprocess.run([sys.executable, "-m", "cagsr", *args], capture_output=True, text=True, timeout=900)


def test_markdown_tables_become_html():
    html = markdown_table("# T\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>" in html


def test_reward_eval_and_report_commands(tmp_path):
    out = cagsr("reward", "--model", "tiny-llama", "--data", "generated:dialogue", "--limit", "2",
                "--plot", str(tmp_path / "plots"), "--output", str(tmp_path / "reward.jsonl"))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in (tmp_path / "reward.jsonl").read_text().splitlines()]
    assert rows and {"coverage", "entropy", "focus", "repetition", "reward", "history_mass", "sink_mass",
                     "salient_words", "reward_version"} <= set(rows[0])
    assert all(0 <= r["coverage"] <= 1 and r["focus"] <= 0 for r in rows)
    assert sorted(p.suffix for p in (tmp_path / "plots").iterdir()) == [".png"] * len(list((tmp_path / "plots").iterdir()))

    out = cagsr("eval", "--model", "tiny-llama", "--data", "generated:math", "--data.num_generated", "20",
                "--max_records", "2", "--eval.cot_max_new_tokens", "8", "--output-dir", str(tmp_path / "eval"))
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "eval" / "eval.json").read_text())["summary"]
    assert {"accuracy", "step_correctness", "ms_per_token", "reward", "engine"} <= set(summary)
    assert "accuracy" in (tmp_path / "eval" / "eval.md").read_text()
    eval_rows = json.loads((tmp_path / "eval" / "eval.json").read_text())["rows"]
    assert {"all/reward", "content/reward", "content/focus"} <= set(eval_rows[0])
    assert eval_rows[0]["reward_version"]["history_tokens"] == "all"
    validity = (tmp_path / "eval" / "validity" / "validity.md").read_text()
    assert "Unprefixed components: history_tokens all" in validity and "| content/focus |" in validity

    page = build_report([tmp_path / "eval"])
    assert page.startswith("<!doctype html>") and "accuracy" in page and "http" not in page.split("<body>")[1][:200]
