"""`cagsr data`: inspect and validate a data file: counts, turn lengths, every problem found.

    cagsr data ../shared/data/star_dialogues.jsonl          # or --data FILE; Parquet and saved datasets too
Prints one JSON summary (system prompts included); exits with code 2 when problems were found.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from cagsr.cli.args import JobParser, add_job_args, parse_job
from cagsr.data.config import DataConfig
from cagsr.data.schema import Dialogue, MathProblem, Record
from cagsr.data.sources import load_records, scan_path
from cagsr.errors import ConfigError, DataError
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


def parse_args(argv: list[str], prog: str) -> DataJob:
    """The job, with the data source given either positionally or as --data (not both)."""
    parser = JobParser(prog=prog, description=DataJob.__doc__)
    parser.add_argument("file", nargs="?", default=None, metavar="FILE",
                        help="the data source (the same as --data)")
    add_job_args(parser, DataJob)
    job, args = parse_job(parser, DataJob, argv)
    if args.file is not None:
        if "data.path" in vars(args):
            raise ConfigError(f"give the data source once: {args.file} or --data {job.data.path}")
        job.data.path = args.file
    return job


def main(argv: list[str], prog: str = "cagsr data") -> None:
    job = parse_args(argv, prog)
    source = job.data.path
    if source.startswith(("generated:", "hf:")):
        records, problems = load_records(job.data), []
    else:
        report = scan_path(Path(source).expanduser(), job.data, strict=False)
        records, problems = report.records, report.problems
    summary = {"source": source, **(summarise(records) if records else {"records": 0}),
               "problems": len(problems), "first_problems": problems[: job.max_problems]}
    with jsonl_sink(job.run.output) as write:
        write(summary)
    if problems or not records:
        first = problems[0] if problems else f"{source}: no records"
        raise DataError(f"{len(problems)} problem(s) found; first: {first}" if problems else first)
