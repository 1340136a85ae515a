"""`cagsr data`: inspect and validate a data file: counts, turn lengths, every problem found.

    cagsr data --data ../shared/data/star_dialogues.jsonl
Prints one JSON summary; exits with code 2 when problems were found.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from cagsr.cli.common import parse_job_args
from cagsr.data.config import DataConfig
from cagsr.data.readers import scan
from cagsr.data.schema import Dialogue, MathProblem, Record
from cagsr.data.sources import load_records
from cagsr.errors import DataError
from cagsr.utils.run import RunConfig, jsonl_sink


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


def summarise(records: list[Record]) -> dict:
    dialogues = [r for r in records if isinstance(r, Dialogue)]
    problems = [r for r in records if isinstance(r, MathProblem)]
    out: dict = {"records": len(records)}
    if dialogues:
        domains: dict[str, int] = {}
        for d in dialogues:
            domains[d.domain] = domains.get(d.domain, 0) + 1
        out |= {
            "kind": "dialogue", "turns_per_dialogue": _stats([len(d.turns) for d in dialogues]),
            "words_per_turn": _stats([len(u.text.split()) for d in dialogues for u in d.turns]),
            "agent_turns": sum(len(d.agent_turn_indices()) for d in dialogues), "domains": domains,
        }
    if problems:
        out |= {
            "kind": "math", "steps_per_problem": _stats([len(p.steps) for p in problems]),
            "words_per_question": _stats([len(p.question.split()) for p in problems]),
        }
    return out


def main(argv: list[str], prog: str = "cagsr data") -> None:
    job, _ = parse_job_args(DataJob, argv, prog, DataJob.__doc__ or "")
    source = job.data.path
    if source.startswith(("generated:", "hf:")):
        records, problems = load_records(job.data), []
    else:
        report = scan(Path(source).expanduser(), job.data.kind, job.data.limit, strict=False)
        records, problems = report.records, report.problems
    summary = {"source": source, **(summarise(records) if records else {"records": 0}),
               "problems": len(problems), "first_problems": problems[: job.max_problems]}
    with jsonl_sink(job.run.output) as write:
        write(summary)
    if problems or not records:
        first = problems[0] if problems else f"{source}: no records"
        raise DataError(f"{len(problems)} problem(s) found; first: {first}" if problems else first)
