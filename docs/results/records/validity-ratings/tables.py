"""Render the tables of docs/results/validity-ratings.md from the records in this folder.

    python docs/results/records/validity-ratings/tables.py > /tmp/tables.md

Each record is the validity-signals.json that `cagsr validity` wrote (facts + one row per signal).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

HERE = Path(__file__).parent
SETS = {"usr": "USR-PersonaChat (240 replies, ground truth left out)", "fed": "FED turn level",
        "tm4": "Taskmaster-4 (0/1 labels)"}
PUBLISHED = {  # Spearman / Pearson with `overall` (ratings README, Yeh et al. 2021)
    "usr": {"BLEU-4": (.090, .135), "BERTScore": (.122, .152), "USR": (.418, .440), "GRADE": (.352, .358),
            "FED": (-.000, -.028), "DynaEval": (.171, .149), "USL-H": (.523, .495), "DEB": (.373, .291)},
    "fed": {"USR": (.117, .114), "GRADE": (.118, .134), "FED": (.095, .120), "DynaEval": (.323, .319),
            "USL-H": (.189, .201), "DEB": (.187, .230)},
}


def cell(row: dict, name: str) -> str:
    value = row.get(name, math.nan)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    fmt = "{:.2f}" if name == "auc" else "{:+.2f}"
    if name == "pearson":  # point value only, to keep the table readable (intervals in the JSON)
        return fmt.format(value)
    low, high = row[f"{name}_low"], row[f"{name}_high"]
    return f"{fmt.format(value)} [{fmt.format(low)}, {fmt.format(high)}]"


def load(model: str, key: str) -> dict | None:
    path = HERE / f"{model}-{key}.json"
    return json.loads(path.read_text()) if path.exists() else None


def table(key: str) -> str:
    runs = {m: load(m, key) for m in ("base", "sft")}
    runs = {m: r for m, r in runs.items() if r}
    if not runs:
        return "(not measured)"
    first = next(iter(runs.values()))
    binary = first["table"][0]["binary"]
    figs = ["auc", "partial"] if binary else ["spearman", "pearson", "partial"]
    names = {"auc": "AUC", "spearman": "Spearman", "pearson": "Pearson", "partial": "partial given length"}
    head = "| signal | " + " | ".join(f"{m} {names[f]}" for m in runs for f in figs) + " |"
    lines = [head, "|---|" + "---|" * (len(runs) * len(figs))]
    rows = {m: {r["signal"]: r for r in run["table"]} for m, run in runs.items()}
    for row in first["table"]:
        s = row["signal"]
        lines.append(f"| {s} | " + " | ".join(cell(rows[m].get(s, {}), f) for m in runs for f in figs) + " |")
    return "\n".join(lines)


def facts(key: str) -> str:
    out = []
    for m in ("base", "sft"):
        r = load(m, key)
        if r:
            out.append(f"{m}: {r['replies']} replies, {r['table'][0]['contexts']} contexts, scoring "
                       f"{r['scoring_seconds']} s")
    return "; ".join(out)


if __name__ == "__main__":
    for key, title in SETS.items():
        print(f"### {title}\n\n{facts(key)}\n\n{table(key)}\n")
        if key in PUBLISHED:
            pub = " | ".join(f"{k} {s:+.3f} / {p:+.3f}" for k, (s, p) in PUBLISHED[key].items())
            print(f"Published (Spearman / Pearson): {pub}\n")
