"""Rows -> the one Markdown report of a run: machine, floor, the timing table, PPO phases, targets.

.venv/bin/python benchmarks/engines.py --quick   # prints it
"""

from __future__ import annotations

from cagsr.bench.config import BenchConfig
from cagsr.bench.machine import Machine

BASELINE = "HF generate, eager + output_attentions (baseline)"
FLOOR_FORMULA = ("floor = prefill FLOPs / F + S x max(W / BW, 2 P B K / F); prefill FLOPs = 2 P_layers B N "
                 "+ 4 L H Dh B (C N + N^2/2) + 2 V d B (one LM-head row per prompt); W = weight bytes one decode "
                 "step reads; BW = best of copy and read bandwidth; F = best fp32 matmul rate (torch.mm, "
                 "oneDNN)")  # fmt: skip


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


def timing_table(rows: list[dict]) -> list[str]:
    lines = ["| section | system | generate ms | capture ms | total ms | speed-up vs baseline | x floor | tokens/row |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    baselines = {r["section"]: r["total"] for r in rows if r["system"] == BASELINE}
    for r in rows:
        base = baselines.get(r["section"])
        speed = _ratio(base, r["total"]) if base else "-"
        lines.append(f"| {r['section']} | {r['system']} | {_ms(r['generate'])} | {_ms(r['capture'])} | "
                     f"{_ms(r['total'])} | {speed} | {_ratio(r['total'], r['floor'])} | {r['tokens']:.1f} |")  # fmt: skip
    floors = {}
    for r in rows:
        floors.setdefault(r["section"], (r["floor"], r["per"], r["samples"]))
    lines.append("")
    for section, (floor, per, samples) in floors.items():
        what = f"median of {samples} repeats" if per == "median" else f"mean over {samples} turns"
        lines.append(f"- {section}: floor {_ms(floor)} ms per turn; times are the {what}.")
    return lines


def ppo_table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    phases = list(dict.fromkeys(p for r in rows for p in r.get("phases", {})))
    lines = ["", f"| {rows[0]['section']}: rollout engine | " + " | ".join(f"{p} s" for p in phases) + " | total s |",
             "|---|" + "---:|" * (len(phases) + 1)]  # fmt: skip
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['system']} | not measured: {r['error']} |")
            continue
        cells = " | ".join(f"{r['phases'].get(p, 0.0):.1f}" for p in phases)
        lines.append(f"| {r['system']} | {cells} | {r['total']:.1f} |")
    return lines


def targets(rows: list[dict], single: str, dialogue: str) -> list[str]:
    """The issue's targets, checked against this run's rows."""
    out = []
    by = {(r["section"], r["system"]): r for r in rows}
    base = by.get((single, BASELINE))
    captured = [
        r for r in rows if r["section"] == single and ("capture" in r["system"]) and r["system"] != BASELINE
    ]
    if base and captured:
        best = min(captured, key=lambda r: r["total"])
        ok = base["total"] / best["total"] >= 3 and best["total"] / best["floor"] <= 1.5
        out.append(f"- single turn, best engine with capture ({best['system']}): {_ratio(base['total'], best['total'])} "
                   f"faster than the baseline (target >= 3x), {_ratio(best['total'], best['floor'])} the floor "
                   f"(target <= 1.5x): {'met' if ok else 'NOT met'}")  # fmt: skip
    base = by.get((dialogue, BASELINE))
    captured = [
        r for r in rows if r["section"] == dialogue and "capture" in r["system"] and r["system"] != BASELINE
    ]
    if base and captured:
        best = min(captured, key=lambda r: r["total"])
        ok = base["total"] / best["total"] >= 5
        out.append(f"- {dialogue}, mean per-turn latency, best engine with capture ({best['system']}): "
                   f"{_ratio(base['total'], best['total'])} faster than the baseline (target >= 5x): "
                   f"{'met' if ok else 'NOT met'}")  # fmt: skip
    return out


def render(cfg: BenchConfig, info: dict[str, str], machine: Machine, rows: list[dict], ppo: list[dict],
           notes: list[str], single: str, dialogue: str) -> str:  # fmt: skip
    head = [f"## Engine benchmark: {cfg.model}, B={cfg.batch}, K={cfg.candidates}, N={cfg.prompt_tokens}, "
            f"S={cfg.new_tokens}, {cfg.dtype}",
            "",
            "- machine: " + ", ".join(f"{k} {v}" for k, v in info.items()),
            f"- measured in this run: copy {machine.copy_gbs:.1f} GB/s, read {machine.read_gbs:.1f} GB/s, "
            f"torch.mm {machine.mm_gflops:.0f} GFLOP/s"
            + (f", oneDNN {machine.onednn_gflops:.0f} GFLOP/s" if machine.onednn_gflops else ""),
            f"- {FLOOR_FORMULA}",
            "- sampling: temperature 0.8, top-k 50, top-p 0.95; the end token is made unreachable so every row "
            "generates exactly S tokens",
            ""]  # fmt: skip
    body = timing_table(rows) + ppo_table(ppo)
    tail = ["", *targets(rows, single, dialogue), *(f"- note: {n}" for n in notes)]
    return "\n".join(head + body + tail) + "\n"
