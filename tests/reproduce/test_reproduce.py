"""`cagsr reproduce` end to end at the tiny scale: every row trains, evaluates and lands in the table."""

import json
import subprocess
import sys

import pytest

from cagsr.reproduce.render import cell
from cagsr.reproduce.tables import CONTENT_ROW, COT_ROWS, DIALOGUE_ROWS, PAPER


def test_cells_show_mean_and_spread():
    assert cell([0.5, 0.7]) == "0.600 ± 0.141"
    assert cell([float("nan")]) == "—"
    assert cell([110.0, 130.0]) == "120 ± 14"


def test_every_system_row_has_the_papers_figures():
    for rows, table in ((DIALOGUE_ROWS, "dialogue"), (COT_ROWS, "cot")):
        systems = {r.name for r in rows if not r.name.startswith("Ablation") and r.name != CONTENT_ROW
                   and not r.versus_multi_turn}  # the controls and peers are ours, not the paper's
        assert systems <= set(PAPER[table]), systems - set(PAPER[table])


@pytest.mark.slow
def test_tiny_cot_table_end_to_end(tmp_path):
    """A plan without a stopping rule runs through the same pipeline: every RL row trains its fixed iterations,
    two seeds of every row from the one supervised model, paired statistics, the same outputs."""
    from cagsr.reproduce.plan import PLANS

    out = subprocess.run([sys.executable, "-m", "cagsr", "reproduce", "--table", "cot", "--scale", "tiny",
                          "--seeds", "2", "--output-dir", str(tmp_path), "--run.progress", "false"],
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-2000:]
    table = (tmp_path / "table.md").read_text()
    for row in COT_ROWS:
        assert row.name in table
    saved = json.loads((tmp_path / "table.json").read_text())
    results = saved["results"]
    assert {"accuracy", "step_correctness", "ms_per_token"} <= set(results["CAGSR multi-turn"][0])
    assert len(results["CAGSR multi-turn"]) == len(results["Random-reward control"]) == 2
    assert len(results["No-RL"]) == 1  # one supervised model: its greedy evaluation is the same every time
    iterations = PLANS["tiny"].ppo["ppo.iterations"]
    assert all(s == {"reason": "fixed", "iterations": iterations, "kl_ref": s["kl_ref"], "kl_ref_k3": s["kl_ref_k3"]}
               and s["kl_ref_k3"] >= 0 for stops in saved["stops"].values() for s in stops)
    assert f"RL rows train {iterations} PPO iterations each" in table and "## Paired differences" in table
    assert (tmp_path / "validity" / "validity.md").exists()
    assert (tmp_path / "configs" / "sft-seed-0.yaml").exists()
    assert json.loads((tmp_path / "compute.json").read_text())["total_seconds"] > 0
    header = next(line for line in table.splitlines() if line.startswith("| system |"))
    assert "| ms/token |" in header  # CoT latency is per reasoning token
    assert "## What the controls say" in table
    assert (tmp_path / "rows" / "cagsr-multi-turn" / "seed-1" / "run" / "model" / "config.json").exists()
    assert not list(tmp_path.glob("rows/*/seed-*/run/checkpoints"))  # only the final models are kept


@pytest.mark.slow
def test_tiny_medium_cot_end_to_end_resumes_and_judges(tmp_path):
    """The medium code path at tiny size: splits, early-stopped SFT per seed, RL rows trained in chunks
    until their reward rises or the cap, two held-out sets, paired statistics, verdicts, report."""
    from cagsr.reproduce.plan import PLANS
    from cagsr.reproduce.tables import CONTENT_ROW

    cmd = [sys.executable, "-m", "cagsr", "reproduce", "--table", "cot", "--scale", "tiny-medium",
           "--output-dir", str(tmp_path), "--run.progress", "false", "--run.threads", "1"]
    budgeted = subprocess.run([*cmd, "--budget-minutes", "0.0001"], capture_output=True, text=True, timeout=600)
    assert budgeted.returncode == 0, budgeted.stderr[-2000:]
    assert json.loads((tmp_path / "table.json").read_text())["results"] == {}  # nothing fits: all skipped
    assert "Not finished when this table was written" in (tmp_path / "table.md").read_text()
    # the same command continues, here in two processes; the single-process reruns below must read the same table
    out = subprocess.run([*cmd, "--workers", "2"], capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "exited with code" not in out.stderr  # no helper failed
    assert "in each of 2 processes" in json.loads((tmp_path / "compute.json").read_text())["device"]
    plan = PLANS["tiny-medium"]
    saved = json.loads((tmp_path / "table.json").read_text())
    assert saved["sets"] == {"generated": plan.heldout["cot"], "easy": plan.easy_items}
    results = saved["results"]
    assert len(results["No-RL"]) == len(results["CAGSR multi-turn"]) == plan.seeds_core
    assert len(results["Ablation: uniform weights"]) == plan.seeds_other
    assert {"accuracy", "easy/accuracy", "easy/step_correctness"} <= set(results["CAGSR multi-turn"][0])
    for stops in saved["stops"].values():
        for stop in stops:
            assert stop["reason"] in ("risen", "cap") and stop["iterations"] <= plan.stop.max_iterations
            assert "kl_ref" in stop and stop["checks"][-1]["iteration"] == stop["iterations"]
    assert all(s["reason"] in ("flattened", "max_steps") for s in saved["sft"]) and len(saved["sft"]) == 2
    if CONTENT_ROW not in results:  # the reward key is not in this version yet: reported, not fatal
        assert "history_tokens" in saved["unavailable"][CONTENT_ROW]
    paired = json.loads((tmp_path / "paired.json").read_text())["comparisons"]
    claims = [c for c in paired if c["kind"] == "claim"]
    assert {(c["metric"], c["set"]) for c in claims if c["b"] == "CAGSR single-turn (HF)"} == {
        (m, s) for m in ("accuracy", "step_correctness") for s in ("generated", "easy")}
    assert all(c["verdict"] in ("holds", "not shown", "reversed") and c["n"] > 0 for c in paired)
    table = (tmp_path / "table.md").read_text()
    assert "## Paired differences" in table and "0.71 / 0.68 / 3.8 / 30" in table  # the paper's figures beside
    assert "## Replies, held-out set `generated`" in table and "| CAGSR multi-turn | 1 | " in table
    assert (tmp_path / "configs" / "cagsr-multi-turn-seed-1.yaml").exists()
    # a second invocation reuses every finished row, reproduces the statistics exactly, and adds no cost
    seconds = {p: p.read_text() for p in tmp_path.glob("rows/*/seed-*/seconds.json")}
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((tmp_path / "paired.json").read_text())["comparisons"] == paired
    assert {p: p.read_text() for p in seconds} == seconds
    _resumes_from_records_alone(cmd, tmp_path, paired)
    config = (tmp_path / "config.yaml").read_text()
    table = (tmp_path / "table.json").read_text()
    again = subprocess.run([*cmd, "--render-only", "true"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "config.yaml").read_text() == config  # still the config of the run that trained
    assert (tmp_path / "table.json").read_text() == table
    report = subprocess.run([sys.executable, "-m", "cagsr", "report", str(tmp_path), "--heatmaps", "0",
                             "--output", str(tmp_path / "report.html")], capture_output=True, text=True, timeout=600)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "paired differences (forest plot)" in (tmp_path / "report.html").read_text()


def test_render_only_refuses_a_folder_without_a_run(tmp_path):
    cmd = [sys.executable, "-m", "cagsr", "reproduce", "--table", "cot", "--scale", "tiny-medium", "--render-only", "true",
           "--output-dir", str(tmp_path / "none")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "holds no run to render" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def _resumes_from_records_alone(cmd: list[str], out, paired: list[dict]) -> None:
    """The records kept in git (docs/results/records/.gitignore drops weights) are enough: without any
    weights the finished rows are reused as they are, and a row whose evaluation is missing too is trained
    again from a supervised model trained again."""
    import shutil

    for weights in [*out.glob("sft/seed-*/model"), *out.glob("rows/*/seed-*/run/model")]:
        shutil.rmtree(weights)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((out / "paired.json").read_text())["comparisons"] == paired
    assert not list(out.glob("sft/seed-*/sft-again.json"))
    row = out / "rows" / "cagsr-multi-turn" / "seed-1"
    (row / "eval-easy.json").unlink()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    first, second = (json.loads((out / "sft" / "seed-1" / f).read_text()) for f in ("sft.json", "sft-again.json"))
    losses = [[loss for _, loss in record["val_losses"]] for record in (first, second)]
    assert losses[1] == pytest.approx(losses[0])  # a seed trains the same model again
    assert (row / "run" / "model").exists() and (row / "eval-easy.json").exists()
    assert "trained again from its seed" in (out / "table.md").read_text()
    assert "of it supervised models trained again" in (out / "table.md").read_text()  # the compute line names it
    assert json.loads((out / "compute.json").read_text())["sft_again_seconds"] == pytest.approx(second["seconds"])
