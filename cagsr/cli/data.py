"""`cagsr data`: inspect and validate a data file: counts, turn lengths, every problem found.

    cagsr data ../shared/data/star_dialogues.jsonl          # or --data FILE; Parquet and saved datasets too
Prints one JSON summary (system prompts included); exits with code 2 when problems were found. The job is
cagsr/data/summary.py; this module parses and prints.
"""

from __future__ import annotations

from cagsr.cli.args import JobParser, add_job_args, parse_job
from cagsr.data.summary import DataJob, inspect_data
from cagsr.errors import ConfigError, DataError
from cagsr.utils.run import jsonl_sink


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
    summary = inspect_data(job)
    with jsonl_sink(job.run.output) as write:
        write(summary)
    problems, source = summary["first_problems"], summary["source"]
    if summary["problems"] or not summary["records"]:
        first = problems[0] if problems else f"{source}: no records"
        raise DataError(f"{summary['problems']} problem(s) found; first: {first}" if problems else first)
