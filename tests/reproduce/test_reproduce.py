"""`cagsr reproduce` end to end at the tiny scale: every row trains, evaluates and lands in the table."""

import json
import subprocess
import sys

import pytest

from cagsr.reproduce.render import cell
from cagsr.reproduce.tables import COT_ROWS, DIALOGUE_ROWS, PAPER


def test_cells_show_mean_and_spread():
    assert cell([0.5, 0.7]) == "0.600 ± 0.141"
    assert cell([float("nan")]) == "—"
    assert cell([110.0, 130.0]) == "120 ± 14"


def test_every_system_row_has_the_papers_figures():
    for rows, table in ((DIALOGUE_ROWS, "dialogue"), (COT_ROWS, "cot")):
        systems = {r.name for r in rows if not r.name.startswith("Ablation")}
        assert systems <= set(PAPER[table]), systems - set(PAPER[table])


@pytest.mark.slow
def test_tiny_cot_table_end_to_end(tmp_path):
    out = subprocess.run([sys.executable, "-m", "cagsr", "reproduce", "--table", "cot", "--scale", "tiny",
                          "--seeds", "1", "--output-dir", str(tmp_path), "--run.progress", "false"],
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-2000:]
    table = (tmp_path / "table.md").read_text()
    for row in COT_ROWS:
        assert row.name in table
    results = json.loads((tmp_path / "table.json").read_text())["results"]
    assert {"accuracy", "step_correctness", "ms_per_token"} <= set(results["CAGSR multi-turn"][0])
    assert (tmp_path / "validity" / "validity.md").exists()
    assert (tmp_path / "configs" / "sft.yaml").exists()
    assert json.loads((tmp_path / "compute.json").read_text())["total_seconds"] > 0
    assert "| ms/token |" in table.splitlines()[2]  # CoT latency is per reasoning token
    assert (tmp_path / "rows" / "cagsr-multi-turn" / "seed-0" / "model" / "config.json").exists()
    assert not list(tmp_path.glob("rows/*/seed-*/checkpoints"))  # only the final models are kept
