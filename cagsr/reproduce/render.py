"""The reproduction as the paper's table: mean ± std per cell over seeds, the paper's figures beside."""

from __future__ import annotations

import json
import math
import platform
import shutil
import statistics
from pathlib import Path

import torch

from cagsr.reproduce.runner import Reproduction, slug
from cagsr.reproduce.tables import COLUMNS, COT_ROWS, DIALOGUE_ROWS, PAPER


def cell(values: list[float]) -> str:
    finite = [v for v in values if isinstance(v, int | float) and not math.isnan(v)]
    if not finite:
        return "—"
    mean = statistics.fmean(finite)
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    digits = 0 if abs(mean) >= 20 else 3
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _paper(table: str, row: str) -> str:
    figures = PAPER[table].get(row)
    return " / ".join(str(f) for f in figures) if figures else "—"


def render_table(rep: Reproduction) -> str:
    paper = PAPER[rep.table]
    keys = [key for _, key in COLUMNS[rep.table]]
    header = [*(label for label, _ in COLUMNS[rep.table]), "reward (attention)",
              f"paper ({' / '.join(paper['columns'])})"]
    lines = [f"| system | {' | '.join(header)} |", "|---|" + "---|" * len(header)]
    rows = DIALOGUE_ROWS if rep.table == "dialogue" else COT_ROWS
    for row in rows:
        summaries = rep.results.get(row.name)
        if not summaries:
            why = rep.unavailable.get(row.name, "no data for this row").replace("|", "/")
            cells = [f"n/a ({why})"] + ["—"] * (len(header) - 2)
        else:
            cells = [cell([s.get(k, math.nan) for s in summaries]) for k in keys]
            cells.append(cell([s.get("reward", math.nan) for s in summaries]))
        lines.append(f"| {row.name} | {' | '.join(cells)} | {_paper(rep.table, row.name)} |")
    return "\n".join(lines)


def write_outputs(rep: Reproduction, seeds: int, seconds: float) -> Path:
    out = rep.out
    configs = out / "configs"
    configs.mkdir(exist_ok=True)
    for config in (out / "rows").glob("*/seed-*/config.yaml"):
        shutil.copy(config, configs / f"{config.parent.parent.name}-{config.parent.name}.yaml")
    if (out / "sft" / "config.yaml").exists():
        shutil.copy(out / "sft" / "config.yaml", configs / "sft.yaml")
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.processor() or 'x86_64'}, {torch.get_num_threads()} threads)"
    row_seconds = sum(sum(v) for v in rep.compute.values())
    compute = {"total_seconds": seconds, "row_seconds": row_seconds, "device": device,
               "per_row_seconds": rep.compute}
    (out / "compute.json").write_text(json.dumps(compute, indent=1))
    (out / "table.json").write_text(json.dumps({"table": rep.table, "scale": rep.scale, "seeds": seeds,
                                                "results": rep.results}, indent=1, default=str))
    engines = {name: sorted({s.get("engine", "?") for s in summaries}) for name, summaries in rep.results.items()}
    text = [f"# Reproduction: {rep.table} table, scale {rep.scale}, {seeds} seed(s)", "",
            render_table(rep), "",
            "Cells: mean ± standard deviation over seeds. Human-rated columns (helpfulness, clarity) stay empty "
            "until ratings are imported with `cagsr human import`; latency is measured with the engine named "
            "below on this machine, the paper's on a GPU with T5-Large.", "",
            f"Compute: {row_seconds / 60:.1f} minutes summed over rows and seeds on {device} (this "
            f"invocation: {seconds / 60:.1f} minutes; rows finished by an earlier one are reused). "
            "Per row (seconds, per seed): "
            + "; ".join(f"{k}: {', '.join(f'{v:.0f}' for v in vs)}" for k, vs in rep.compute.items()), "",
            "Engines used for latency: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in engines.items()), "",
            f"Exact configs: `configs/` ({', '.join(sorted(p.name for p in configs.glob('*.yaml')))})."]
    path = out / "table.md"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


__all__ = ["render_table", "slug", "write_outputs"]
