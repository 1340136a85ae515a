"""What a held-out dialogue evaluation costs: generation batched in prompt order vs shortest first vs
shortest first with each dialogue's cached history reused between its turns, and the attention reward's two
versions from two capture passes vs one.

    .venv/bin/python benchmarks/eval_cost.py --threads 2 --output runs/bench-eval-cost.md
    .venv/bin/python benchmarks/eval_cost.py --quick          # tiny-llama, seconds: a smoke test

The settings are the medium reproduction's (24 new tokens, batches of 16, 384-token histories);
`--turns 0` evaluates every agent turn of each dialogue. Time nothing while another CPU-heavy job
runs: the load average is printed beside the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch

from cagsr.bench.machine import load_average, publish, run_info
from cagsr.data.config import DataConfig
from cagsr.data.sources import load_records
from cagsr.evaluation.runner import EvalSettings, _dialogue_rows, _generate_timed, default_definition
from cagsr.formatting.examples import supervised_pairs
from cagsr.models import load_model
from cagsr.rollout.engines.base import SamplingConfig, make_engine
from cagsr.scoring.probe import probe, probe_versions

STAR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "star_dialogues.jsonl"


def _prompts(loaded, dialogues, settings: EvalSettings) -> tuple[list[list[int]], list[str]]:
    """The evaluation's prompts and their dialogues, as runner._dialogue_rows forms them."""
    by_dialogue: dict[str, list] = {}
    for p in supervised_pairs(dialogues, loaded, settings.max_context):
        if p.turn_index > 0:
            by_dialogue.setdefault(p.record_id, []).append(p)
    pairs = [p for group in by_dialogue.values() for p in group[: settings.max_turns]]
    return [p.history.input_ids for p in pairs], [p.record_id for p in pairs]


def _in_prompt_order(engine, prompts, settings: EvalSettings) -> list[list[int]]:
    sampling = SamplingConfig(do_sample=False, max_new_tokens=settings.max_new_tokens)
    out = []
    for start in range(0, len(prompts), settings.batch_size):
        out += [c[0].token_ids for c in engine.generate(prompts[start : start + settings.batch_size], sampling)]
    return out


def _timed(fn) -> tuple[float, object]:
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


def measure(model: str, data: str, dialogues: int, turns: int, repeats: int) -> dict:
    loaded = load_model(model)
    records = load_records(DataConfig(path=data, limit=dialogues))
    settings = EvalSettings(engine="auto", max_new_tokens=24, max_turns=turns or 10**6, max_context=384,
                            batch_size=16)
    engine = make_engine(settings.engine, loaded)
    prompts, sessions = _prompts(loaded, records, settings)
    _, episodes, _ = _dialogue_rows(loaded, engine, records, settings, None)
    definition = default_definition(loaded, records)
    rewards = {v: dataclasses.replace(definition.terms, history_tokens=v) for v in ("all", "content")}
    times: dict[str, list[float]] = {k: [] for k in ("gen_order", "gen_sorted", "gen_reuse", "reward_two",
                                                     "reward_one")}
    for _ in range(repeats):  # interleaved, so a drift in machine load reaches every variant alike
        seconds, before = _timed(lambda: _in_prompt_order(engine, prompts, settings))
        times["gen_order"].append(seconds)
        seconds, (after, _) = _timed(lambda: _generate_timed(engine, prompts, settings.max_new_tokens,
                                                             settings.batch_size))
        times["gen_sorted"].append(seconds)
        seconds, (reused, _) = _timed(lambda: _generate_timed(engine, prompts, settings.max_new_tokens,
                                                              settings.batch_size, sessions))
        times["gen_reuse"].append(seconds)
        seconds, two = _timed(lambda: {v: probe(episodes, loaded, dataclasses.replace(definition, terms=r))
                                       for v, r in rewards.items()})
        times["reward_two"].append(seconds)
        seconds, one = _timed(lambda: probe_versions(episodes, loaded, definition, rewards))
        times["reward_one"].append(seconds)
    return {"turns": len(prompts), "prompt_tokens": sum(map(len, prompts)),
            "median": {k: statistics.median(v) for k, v in times.items()},
            "replies_differ": sum(a != b.token_ids for a, b in zip(before, after, strict=True)),
            "reused_differ": sum(a != b.token_ids for a, b in zip(before, reused, strict=True)),
            "rewards_equal": one == two}


def render(result: dict, info: dict[str, str]) -> str:
    m, n = result["median"], result["turns"]
    lines = ["# Held-out dialogue evaluation: cost by part", "",
             f"{n} agent turns, {result['prompt_tokens']} prompt tokens; median of the interleaved repeats.", "",
             "| part | before | after | before / after |", "|---|---|---|---|"]
    for part, old, new, how in (("generation", "gen_order", "gen_sorted", "prompt order -> shortest first"),
                                ("generation", "gen_order", "gen_reuse", "prompt order -> history reused"),
                                ("attention reward, 2 versions", "reward_two", "reward_one", "2 passes -> 1")):
        lines.append(f"| {part} ({how}) | {m[old]:.1f} s ({1000 * m[old] / n:.0f} ms/turn) | "
                     f"{m[new]:.1f} s ({1000 * m[new] / n:.0f} ms/turn) | {m[old] / m[new]:.2f} |")
    old, new = m["gen_order"] + m["reward_two"], m["gen_reuse"] + m["reward_one"]
    lines += [f"| both | {old:.1f} s | {new:.1f} s | {old / new:.2f} |", "",
              f"Greedy replies that differ from prompt order: shortest first {result['replies_differ']}, "
              f"history reused {result['reused_differ']} of {n}. "
              f"Reward rows equal between one pass and two: {result['rewards_equal']}.", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="model name or path")
    parser.add_argument("--data", default=str(STAR), help="dialogues (STAR by default)")
    parser.add_argument("--dialogues", type=int, default=24, help="dialogues evaluated")
    parser.add_argument("--turns", type=int, default=2, help="agent turns per dialogue (0: every one)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats (median reported)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--quick", action="store_true", help="tiny-llama on 4 generated dialogues, 1 repeat")
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.model, args.data, args.dialogues, args.repeats = "tiny-llama", "generated:dialogue", 4, 1
    start = load_average()
    result = measure(args.model, args.data, args.dialogues, args.turns, args.repeats)
    publish(render(result, run_info(start, model=args.model)), args.output)


if __name__ == "__main__":
    main()
