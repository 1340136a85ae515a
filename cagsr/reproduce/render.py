"""A reproduction's outputs: the table (our cells beside the paper's), when each RL row stopped, paired
differences with verdicts, replies, compute; table.md, table.json, paired.json, compute.json, configs/.
"""

from __future__ import annotations

import json
import math
import platform
import statistics
from pathlib import Path

import torch
import yaml

from cagsr.reproduce.claims import METRICS, POSITIONS
from cagsr.reproduce.controls import controls_plot, controls_section
from cagsr.reproduce.plan import PLANS
from cagsr.reproduce.results import Reproduction
from cagsr.reproduce.sources import render_sources, reward_sources, sources_plot
from cagsr.reproduce.stopping import kl_text
from cagsr.reproduce.tables import PAPER, table_rows


def cell(values: list[float]) -> str:
    """mean ± standard deviation over seeds ('—' when nothing is finite).

    >>> cell([0.5, 0.7]), cell([16.5, 24.5]), cell([110.0, 130.0]), cell([float("nan")])
    ('0.600 ± 0.141', '20.5 ± 5.7', '120 ± 14', '—')
    """
    finite_values = [v for v in values if isinstance(v, int | float) and not math.isnan(v)]
    if not finite_values:
        return "—"
    mean = statistics.fmean(finite_values)
    std = statistics.stdev(finite_values) if len(finite_values) > 1 else 0.0
    digits = 3 if abs(mean) < 10 else 1 if abs(mean) < 100 else 0  # one format per column's range
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _paper(table: str, row: str) -> str:
    figures = PAPER[table].get(row)
    return " / ".join(str(f) for f in figures) if figures else "—"


def _columns(rep: Reproduction) -> list[tuple[str, str]]:
    sets = list(rep.sets)
    cols = []
    for i, name in enumerate(sets):
        prefix = "" if i == 0 else f"{name}/"
        cols += [(f"{m.replace('_', ' ')} ({name})", f"{prefix}{m}") for m in METRICS[rep.table]]
    return [*cols, ("ms/turn" if rep.table == "dialogue" else "ms/token",
                    "ms_per_turn" if rep.table == "dialogue" else "ms_per_token")]


def _stops(stops: list[dict]) -> str:
    if not stops:
        return "—"
    its = ", ".join(f"{s['iterations']} ({s['reason']})" for s in stops)
    kl = kl_text(stops)
    return f"{its}; {kl}" if kl else its


KL_NOTE = ("KL to ref: the per-token KL to the reference over the iterations since the previous stopping check (the "
           "whole run without a stopping rule), averaged over seeds; "
           "k1 (the mean log-ratio of the sampled tokens) can come out below zero, since replies are sampled at "
           "temperature 0.8 with top-k/top-p rather than from the policy itself; k3 (never negative) is given "
           "beside it where every seed's run logged it.")


def render_table(rep: Reproduction) -> str:
    cols = _columns(rep)
    paper = PAPER[rep.table]
    header = ["system", "seeds", *(label for label, _ in cols), "RL iterations (stop); KL to ref",
              f"paper ({' / '.join(paper['columns'])})"]
    lines = [f"| {' | '.join(header)} |", "|---|" + "---|" * (len(header) - 1)]
    for row in table_rows(rep.table):
        summaries = rep.results.get(row.name)
        if not summaries:
            why = rep.unavailable.get(row.name, "not run").replace("|", "/")
            cells = [f"n/a ({why})"] + ["—"] * (len(header) - 4)
        else:
            cells = [str(len(summaries)), *(cell([s.get(k, math.nan) for s in summaries]) for _, k in cols),
                     _stops(rep.stops.get(row.name, [])) if row.rl else "— (supervised)"]
        lines.append(f"| {row.name} | {' | '.join(cells)} | {_paper(rep.table, row.name)} |")
    return "\n".join(lines)


def render_paired(rep: Reproduction) -> str:
    lines = ["| comparison | kind | paper | ours: mean [95% CI] | per seed (spread) | verdict | paper in CI |",
             "|---|---|---|---|---|---|---|"]
    for r in rep.paired:
        ours = "—" if r["n"] == 0 else f"{r['mean']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}] (n={r['n']})"
        spread = f"(± {r['spread']:.3f})" if len(r["seed_diffs"]) > 1 else "(1 seed)"
        seeds = ", ".join(f"{d:+.3f}" for d in r["seed_diffs"]) + f" {spread}"
        paper = "—" if r["paper"] is None else f"{r['paper']:+.3f}"
        inside = {None: "—", True: "yes", False: "no"}[r["paper_inside"]]
        expect = "a > b" if r["direction"] > 0 else "a < b"
        lines.append(f"| {r['label']} | {r['kind']} ({expect}) | {paper} | {ours} | {seeds} | {r['verdict']} "
                     f"| {inside} |")
    return "\n".join(lines)


def render_positions(results: list[dict]) -> str:
    """One line per comparison and metric, one column per agent-turn position: mean [95% CI] (dialogues),
    verdict.

    >>> print(render_positions([{"a": "A", "b": "B", "metric": "m", "set": "s@1-2", "mean": 0.1, "low": 0.05,
    ...                          "high": 0.15, "n": 9, "verdict": "holds"}]))
    | comparison | agent turns 1-2 | agent turns 3-5 | agent turns 6+ |
    |---|---|---|---|
    | A − B: m | +0.100 [+0.050, +0.150] (9) holds | — | — |
    """
    cells: dict[str, dict[str, str]] = {}
    for r in results:
        position = r["set"].rsplit("@", 1)[1]
        cells.setdefault(f"{r['a']} − {r['b']}: {r['metric']}", {})[position] = (
            f"{r['mean']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}] ({r['n']}) {r['verdict']}")
    lines = ["| comparison | " + " | ".join(f"agent turns {p}" for p in POSITIONS) + " |",
             "|---|" + "---|" * len(POSITIONS)]
    lines += [f"| {label} | " + " | ".join(row.get(p, "—") for p in POSITIONS) + " |" for label, row in cells.items()]
    return "\n".join(lines)


def verdict_sentences(rep: Reproduction) -> list[str]:
    out = []
    for r in rep.paired:
        if r["kind"] != "claim":
            continue
        side = "beats" if r["direction"] > 0 else "falls below"
        out.append(f"- {r['a']} {side} {r['b']} on {r['metric']} ({r['set']}): **{r['verdict']}**, "
                   f"{r['mean']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}] over {r['n']} items "
                   f"(paper {r['paper']:+.3f}).")
    return out


def reply_stats(eval_rows: list[dict]) -> dict[tuple[str, int], tuple[float, int, int]]:
    """(system, seed) -> (mean words per reply, distinct replies, replies): how far a policy has collapsed
    toward a few replies, which no mean metric shows.

    >>> reply_stats([{"system": "a", "seed": 0, "generated": "hi there"}, {"system": "a", "seed": 0,
    ...              "generated": " hi there"}, {"system": "a", "seed": 0, "generated": "bye"}])
    {('a', 0): (1.6666666666666667, 2, 3)}
    """
    replies: dict[tuple[str, int], list[str]] = {}
    for r in eval_rows:
        replies.setdefault((r["system"], r["seed"]), []).append(r["generated"].strip())
    return {key: (statistics.fmean(len(t.split()) for t in texts), len(set(texts)), len(texts))
            for key, texts in replies.items()}


def same_replies(eval_rows: list[dict], at_least: float = 0.95) -> list[str]:
    """Pairs of rows whose policies, at the same seed, gave the same reply to at least `at_least` of the
    held-out items (compared in evaluation order, which every row shares): training that changed nothing,
    such as an ablation of a term that never bound.

    >>> rows = [{"system": s, "seed": 0, "generated": g} for s, g in [("a", "x"), ("a", "y"), ("b", "x "),
    ...         ("b", "y"), ("c", "x"), ("c", "z")]]
    >>> same_replies(rows)
    ['a and b, seed 0: the same reply to 2 of 2 items']
    """
    replies: dict[tuple[str, int], list[str]] = {}
    for r in eval_rows:
        replies.setdefault((r["system"], r["seed"]), []).append(r["generated"].strip())
    out = []
    for (a, seed), mine in replies.items():
        for (b, other_seed), theirs in replies.items():
            if other_seed != seed or b <= a or len(theirs) != len(mine) or not mine:
                continue
            same = sum(x == y for x, y in zip(mine, theirs, strict=True))
            if same >= at_least * len(mine):
                out.append(f"{a} and {b}, seed {seed}: the same reply to {same} of {len(mine)} items")
    return out


def render_replies(rep: Reproduction) -> str:
    stats = reply_stats(rep.eval_rows)
    lines = ["| system | seed | mean words per reply | distinct replies |", "|---|---|---|---|"]
    for row in table_rows(rep.table):
        for (system, seed), (words, distinct, n) in sorted(stats.items()):
            if system == row.name:
                lines.append(f"| {system} | {seed} | {words:.1f} | {distinct} / {n} |")
    same = same_replies(rep.eval_rows)
    if same:
        lines += ["", "Rows whose policies gave the same replies (their difference is no evidence either way; "
                  "for an ablation, the term it removes did not change training): " + "; ".join(same) + "."]
    return "\n".join(lines)


def _sft_summary(record: dict) -> str:
    """One supervised model's line: steps, why it stopped, the step whose weights were kept.

    >>> _sft_summary({"seed": 1, "stopped_at": 30, "max_steps": 60, "reason": "flattened", "kept_step": 20,
    ...               "val_losses": [[0, 2.0], [10, 1.5], [20, 1.2], [30, 1.3]]})
    'seed 1: 30 steps (flattened), kept step 20, val loss 2.000 -> 1.200'
    >>> _sft_summary({"seed": 0, "stopped_at": None, "max_steps": 10, "reason": "max_steps",
    ...               "val_losses": [[0, 2.0], [10, 1.5]], "again": {"val_losses": [[0, 2.0], [10, 1.5]]}})
    'seed 0: 10 steps (max_steps), val loss 2.000 -> 1.500 (trained again from its seed: 1.500)'
    """
    losses = dict(record["val_losses"])
    last = record["val_losses"][-1][0]
    kept = record.get("kept_step", last)  # records from before sft.keep_best kept the last weights
    kept_text = f", kept step {kept}" if kept != last else ""
    again = ""
    if "again" in record:  # its weights were lost (they are not kept in git) and trained again for later rows
        again_losses = dict(record["again"]["val_losses"])
        again = f" (trained again from its seed: {again_losses[record['again'].get('kept_step', kept)]:.3f})"
    return (f"seed {record['seed']}: {record['stopped_at'] or record['max_steps']} steps ({record['reason']})"
            f"{kept_text}, val loss {losses[0]:.3f} -> {losses[kept]:.3f}{again}")


def _device(workers: int) -> str:
    processes = f" in each of {workers} processes" if workers > 1 else ""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0) + (f" ({workers} processes)" if workers > 1 else "")
    threads = torch.get_num_threads()
    return f"CPU ({platform.processor() or 'x86_64'}, {threads} thread{'s' * (threads != 1)}{processes})"


def _stopping_rule(scale: str) -> str:
    """How the table's RL rows were trained, in a sentence."""
    plan = PLANS[scale]
    if plan.stop is None:
        return f"RL rows train {plan.ppo.get('ppo.iterations')} PPO iterations each (a plan without a stopping rule)."
    rule = plan.stop
    return (f"RL rows train until their own reward on {plan.check_items} stopping items is above the supervised "
            f"model's (paired bootstrap {rule.level:.0%} lower bound > {rule.margin}), checked every "
            f"{rule.check_every} iterations, at most {rule.max_iterations}; 'cap' means it never rose clearly.")


def _write_compute(rep: Reproduction, seconds: float | None) -> dict:
    """compute.json: the rows' and supervised models' seconds; `seconds` None (a render) keeps the saved
    total and device of the last invocation that ran."""
    path = rep.out / "compute.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    # A render keeps what the last invocation that ran measured: its wall time and the machine it ran on.
    device = _device(rep.workers) if seconds is not None else saved.get("device", _device(rep.workers))
    if seconds is None:
        seconds = saved.get("total_seconds", 0.0)
    # A supervised model trained again (its weights were lost with a machine) ran inside the row-seed
    # that needed it, so its time is already in the rows' seconds: named there, not added.
    compute = {"total_seconds": seconds, "row_seconds": sum(sum(v) for v in rep.compute.values()),
               "device": device, "per_row_seconds": rep.compute,
               "sft_seconds": sum(s.get("seconds", 0.0) for s in rep.sft),
               "sft_again_seconds": sum(_again_seconds(s.get("again", {})) for s in rep.sft)}
    path.write_text(json.dumps(compute, indent=1))
    return compute


def _again_seconds(again: dict) -> float:
    """Seconds a supervised model spent being trained again, over every time it was.

    >>> _again_seconds({"seconds": 60.0, "earlier_seconds": 30.0}), _again_seconds({})
    (90.0, 0.0)
    """
    return again.get("seconds", 0.0) + again.get("earlier_seconds", 0.0)


def _write_configs(out: Path) -> None:
    configs = out / "configs"
    configs.mkdir(exist_ok=True)
    for stop_file in out.glob("rows/*/seed-*/stop.json"):  # the run's config with the iterations it stopped at
        config = yaml.safe_load((stop_file.parent / "run" / "config.yaml").read_text())
        config["ppo"]["iterations"] = json.loads(stop_file.read_text())["iterations"]
        name = f"{stop_file.parent.parent.name}-{stop_file.parent.name}.yaml"
        (configs / name).write_text(yaml.safe_dump(config, sort_keys=False))
    for sft_config in out.glob("sft/seed-*/config.yaml"):
        (configs / f"sft-{sft_config.parent.name}.yaml").write_text(sft_config.read_text())


def _compute_line(compute: dict, rendered: bool) -> str:
    again = compute["sft_again_seconds"]
    again_text = f", of it supervised models trained again {again / 60:.1f}" if again else ""
    this = ("written from the records (--render-only)" if rendered
            else f"this invocation {compute['total_seconds'] / 60:.1f} minutes")
    return (f"Compute: {(compute['row_seconds'] + compute['sft_seconds']) / 60:.1f} minutes (rows "
            f"{compute['row_seconds'] / 60:.1f}{again_text}, SFT {compute['sft_seconds'] / 60:.1f}) "
            f"on {compute['device']}; {this}.")


def _write_sources(rep: Reproduction) -> list[str]:
    """sources.png, and the lines of table.md's section on where the reward's change comes from."""
    rows = reward_sources(rep.eval_rows, sft_seeds=max(1, len(rep.sft)))
    if not rows:
        return []
    order = list(dict.fromkeys(r.name for r in table_rows(rep.table)))
    if plot := sources_plot(rows, order):
        (rep.out / "sources.png").write_bytes(plot)
    return [f"## Where the reward's change comes from (held-out set `{next(iter(rep.sets), '')}`)", "",
            "Each row's attention reward minus No-RL's from the same supervised model, split into the reward's "
            "weighted terms (alpha·Δcoverage + beta·Δfocus − gamma·Δrepetition of the history; they add up to "
            "the change; a positive repetition term is less repetition); means over the row's seeds.", "",
            render_sources(rows, order), "",
            "![Each row's reward change over No-RL, split into its terms](sources.png)", ""]


def write_outputs(rep: Reproduction, seconds: float | None) -> Path:
    """Every output file of the reproduction; the path of table.md. `seconds`: this invocation's wall time;
    None: a render from the records (--render-only)."""
    out = rep.out
    compute = _write_compute(rep, seconds)
    (out / "paired.json").write_text(json.dumps({"table": rep.table, "scale": rep.scale, "comparisons": rep.paired,
                                                 "by_position": rep.by_position}, indent=1))
    (out / "table.json").write_text(json.dumps({"table": rep.table, "scale": rep.scale, "sets": rep.sets,
                                                "results": rep.results, "stops": rep.stops, "sft": rep.sft,
                                                "unavailable": rep.unavailable, "paired": rep.paired,
                                                "by_position": rep.by_position},
                                               indent=1, default=str))
    _write_configs(out)
    sft = "; ".join(_sft_summary(record) for record in rep.sft)
    if plot := controls_plot(rep.paired):
        (out / "controls.png").write_bytes(plot)
    text = [f"# Reproduction: {rep.table} table, scale {rep.scale}", "",
            "Held-out sets (items; none in SFT, reward-model or RL data, asserted by record id): "
            + ", ".join(f"{k}: {v}" for k, v in rep.sets.items()), "",
            *(["## What the controls say", "", *controls, "", "![The controls' and peers' paired differences on "
               "quality metrics](controls.png)", ""] if (controls := controls_section(
                rep.paired, rep.stops, rep.table, next(iter(rep.sets), ""))) else []),
            render_table(rep), "",
            f"Cells: mean ± standard deviation over seeds. {_stopping_rule(rep.scale)} {KL_NOTE}", "",
            f"Supervised models (until the validation loss flattened): {sft}.", "",
            *([f"Not finished when this table was written (rerun the command to continue): "
               f"{', '.join(rep.skipped)}.", ""]
              if rep.skipped else []),
            "## Paired differences (a − b over the same held-out items)", "", render_paired(rep), "",
            "## The paper's claims", "", *(verdict_sentences(rep) or ["- (no claim had both rows)"]), "",
            *(["## By agent-turn position", "", "Multi-turn against single-turn and No-RL on the turns at each "
               "position of the held-out dialogues (1 = a dialogue's first evaluated agent reply); paired "
               "intervals over the dialogues that have such turns (their count in brackets).", "",
               render_positions(rep.by_position), ""] if rep.by_position else []),
            *_write_sources(rep),
            f"## Replies, held-out set `{next(iter(rep.sets), '')}`", "", render_replies(rep), "",
            _compute_line(compute, rendered=seconds is None), "",
            "Exact configs: `configs/`; per-check stopping records: `rows/*/seed-*/stopping.jsonl`."]
    path = out / "table.md"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path
