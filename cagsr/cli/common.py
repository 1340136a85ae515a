"""Shared pieces of subcommands: parser construction and quiet library logging."""

from __future__ import annotations

import logging
import warnings

from cagsr.cli.args import JobParser, add_job_args, parse_job


def quiet_libraries() -> None:
    """Keep stderr for our progress bars and errors: silence transformers' load chatter."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("torch.utils.tensorboard").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)


def parse_job_args(job_cls: type, argv: list[str], prog: str, description: str):
    """Build the parser for `job_cls`, parse argv, return (job, namespace)."""
    parser = JobParser(prog=prog, description=description)
    add_job_args(parser, job_cls)
    return parse_job(parser, job_cls, argv)
