"""Write the reward-validity report: Spearman tables (per turn, per episode), scatter grid, hacking check.

write_validity_report(rows, folder, history=metrics_rows)   # -> folder/validity.md, validity.png
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from cagsr.evaluation.analysis.validity import COMPONENTS, reward_hacking_check, validity_plot, validity_table

# Both versions of the reward (history_tokens all / content) when the rows carry them (cagsr eval does).
VERSIONED = tuple(f"{v}/{c}" for v in ("all", "content") for c in COMPONENTS)


def _cell(r: dict) -> str:
    if math.isnan(r["rho"]):
        return "—"
    return f"{r['rho']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}]"


def validity_markdown(rows: list[dict]) -> tuple[str, list[dict]]:
    components = (*COMPONENTS, *VERSIONED)
    tables = validity_table(rows, components, level="turn") + validity_table(rows, components, level="episode")
    lines = [
        "| level | component | metric | Spearman rho [95% CI] | n | holds? |",
        "|---|---|---|---|---|---|",
    ]
    for r in tables:
        holds = (
            "—"
            if math.isnan(r["low"])
            else ("yes" if r["low"] > 0 else ("no (negative)" if r["high"] < 0 else "not significant"))
        )
        if r["component"].endswith("repetition") and not math.isnan(
            r["low"]
        ):  # a penalty: negative is the good sign
            holds = "yes" if r["high"] < 0 else ("no (positive)" if r["low"] > 0 else "not significant")
        lines.append(f"| {r['level']} | {r['component']} | {r['metric']} | {_cell(r)} | {r['n']} | {holds} |")
    return "\n".join(lines), tables


def version_note(rows: list[dict]) -> str:
    """Which reward version and weights the components were computed with (from the rows' reward_version)."""
    v = next((r["reward_version"] for r in rows if r.get("reward_version")), None)
    if v is None:
        return "Reward version: not recorded in the rows."
    # Rows saved before the weights were renamed name them alpha, beta and gamma.
    weights = [v.get(new, v.get(old)) for new, old in (("coverage_weight", "alpha"), ("focus_weight", "beta"),
                                                         ("repetition_weight", "gamma"))]
    return (f"Unprefixed components: history_tokens {v['history_tokens']} (sink tokens {v['sink_tokens']}), "
            f"coverage {weights[0]}, focus {weights[1]}, repetition {weights[2]}, "
            f"tau0 {v['tau0']}, kappa {v['kappa']}; "
            "all/ and content/ components: the same weights over all history tokens and over content tokens only.")


def write_validity_report(
    rows: list[dict], folder: Path, history: list[dict] | None = None, title: str = "Reward validity"
) -> Path:
    """Markdown + JSON + PNG. `history`: per-iteration eval rows of a training run (hacking check)."""
    folder.mkdir(parents=True, exist_ok=True)
    table, raw = validity_markdown(rows)
    parts = [
        f"# {title}",
        "",
        f"{len(rows)} generated turns. A component 'holds' for a metric when the 95% "
        "bootstrap interval of Spearman's rho excludes 0 with the expected sign (positive; negative for "
        "the repetition penalty).",
        "",
        version_note(rows),
        "",
        table,
    ]
    verdict = None
    if history:
        verdict = reward_hacking_check(
            history, reward_key="eval/reward", metrics=("eval/bleu", "eval/accuracy", "eval/distinct2")
        )
        parts += [
            "",
            "## Reward hacking check (held-out evaluations during training)",
            "",
            verdict["message"],
        ]
    if rows:
        validity_plot(rows, folder / "validity.png")
        parts += ["", "![validity](validity.png)"]
    (folder / "validity.json").write_text(
        json.dumps({"table": raw, "hacking": verdict}, indent=1, default=str)
    )
    path = folder / "validity.md"
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path
