"""The `cagsr data` job: summarise and validate a data source (counts, turn lengths, system prompts, every
problem found); the CLI (cli/data.py) parses and prints.

    summary = inspect_data(DataJob(data=DataConfig(path="../shared/data/star_dialogues.jsonl")))
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from cagsr.data.config import DataConfig
from cagsr.data.schema import Dialogue, MathProblem, Record
from cagsr.data.sources import load_records, scan_path
from cagsr.utils.run import RunConfig


@dataclass
class DataJob:
    """`cagsr data`: summarise and validate a data source."""

    data: DataConfig = field(default_factory=DataConfig)
    """The data source to inspect."""
    run: RunConfig = field(default_factory=RunConfig)
    """Where to write the summary (--output)."""
    max_problems: int = 20
    """How many problems to list in the summary."""


def _stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    return {"min": min(values), "mean": round(statistics.fmean(values), 2), "max": max(values)}


def _system_prompts(dialogues: list[Dialogue], shown: int = 3) -> dict:
    """How many dialogues carry a system prompt (the model's system slot, never a trained turn), and the
    most common ones."""
    counts: dict[str, int] = {}
    for d in dialogues:
        if d.system_prompt:
            counts[d.system_prompt] = counts.get(d.system_prompt, 0) + 1
    common = sorted(counts.items(), key=lambda kv: -kv[1])[:shown]
    return {"dialogues": sum(counts.values()), "distinct": len(counts),
            "most_common": [{"text": text, "dialogues": n} for text, n in common]}


def summarise(records: list[Record]) -> dict:
    dialogues = [r for r in records if isinstance(r, Dialogue)]
    problems = [r for r in records if isinstance(r, MathProblem)]
    out: dict = {"records": len(records)}
    if dialogues:
        domains: dict[str, int] = {}
        for d in dialogues:
            domains[d.domain] = domains.get(d.domain, 0) + 1
        out |= {
            "kind": "dialogue", "turns_per_dialogue": _stats([len(d.conversation()) for d in dialogues]),
            "words_per_turn": _stats([len(u.text.split()) for d in dialogues for u in d.conversation()]),
            "agent_turns": sum(len(d.agent_turn_indices()) for d in dialogues), "domains": domains,
            "system_prompts": _system_prompts(dialogues),
        }
    if problems:
        out |= {
            "kind": "math", "steps_per_problem": _stats([len(p.steps) for p in problems]),
            "words_per_question": _stats([len(p.question.split()) for p in problems]),
        }
    return out


def inspect_data(job: DataJob) -> dict:
    """The summary of job.data: counts and lengths of what parsed, the number of problems and the first ones."""
    source = job.data.path
    if source.startswith(("generated:", "hf:")):
        records, problems = load_records(job.data), []
    else:
        report = scan_path(Path(source).expanduser(), job.data, strict=False)
        records, problems = report.records, report.problems
    return {"source": source, **(summarise(records) if records else {"records": 0}),
            "problems": len(problems), "first_problems": problems[: job.max_problems]}
