"""The paired-difference forest plot and its place in the HTML report."""

import json

from cagsr.report.figures import forest_plot
from cagsr.report.page import build_report

COMPARISONS = [
    {"label": "multi − single: coherence", "mean": 0.02, "low": 0.01, "high": 0.03, "n": 150, "verdict": "holds",
     "paper": 0.02},
    {"label": "ablation − multi: coherence", "mean": 0.0, "low": -0.01, "high": 0.01, "n": 150,
     "verdict": "not shown", "paper": None},
]


def test_forest_plot_is_a_png_and_empty_input_draws_nothing():
    png = forest_plot(COMPARISONS)
    assert png and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert forest_plot([]) is None
    assert forest_plot([{"label": "x", "mean": float("nan"), "low": None, "high": None, "n": 0}]) is None


def test_report_embeds_the_plot_of_a_medium_reproduction(tmp_path):
    (tmp_path / "paired.json").write_text(json.dumps({"table": "dialogue", "comparisons": COMPARISONS}))
    page = build_report([tmp_path])
    assert "Paired differences" in page and 'alt="paired differences (forest plot)"' in page
    assert "By agent-turn position" not in page  # a CoT table, or one written before positions were judged
    by_position = [{**c, "label": f"{c['label']} (star@6+)"} for c in COMPARISONS]
    (tmp_path / "paired.json").write_text(json.dumps({"comparisons": COMPARISONS, "by_position": by_position}))
    assert 'alt="by agent-turn position (forest plot)"' in build_report([tmp_path])
    (tmp_path / "paired.json").unlink()
    assert "Paired differences" not in build_report([tmp_path])
