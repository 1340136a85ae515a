"""argparse flags generated from a job dataclass, so help text lives in the field docstrings.

    parser = JobParser(prog="cagsr sft", description=...)
    add_job_args(parser, SFTJob)
    job = parse_job(parser, SFTJob, argv)
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Literal, get_args, get_origin

from cagsr.config import REMOVED, RENAMED, _is_optional, field_docs, iter_fields, load_job
from cagsr.errors import ConfigError


class JobParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (ConfigError) instead of usage + message."""

    def error(self, message: str):  # noqa: D102 - argparse API
        raise ConfigError(message)


def _metavar(tp: Any) -> str:
    _, inner = _is_optional(tp)
    if get_origin(inner) is Literal:
        return "{" + ",".join(map(str, get_args(inner))) + "}"
    if get_origin(inner) in (list, tuple):
        return "A,B,..."
    return getattr(inner, "__name__", "VALUE").upper()


def add_job_args(parser: argparse.ArgumentParser, job_cls: type) -> None:
    """One `--section.field` flag per leaf field (plus its alias), all defaulting to 'not given'; fields marked
    metadata cli=False (a head probe's fitted numbers) are set in YAML only."""
    parser.add_argument(
        "--config", default=None, metavar="YAML",
        help="preset: a YAML file or the name of a shipped preset; flags override it",
    )
    defaults = dataclasses.asdict(job_cls()) if _all_defaults(job_cls) else {}
    section_docs = field_docs(job_cls)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for dotted, field, tp, doc in iter_fields(job_cls):
        if field.metadata.get("cli") is False:  # fitted numbers a preset carries (YAML only)
            continue
        section = dotted.split(".")[0] if "." in dotted else ""
        if section not in groups:
            groups[section] = parser.add_argument_group(section or "options", section_docs.get(section))
        flags = [f"--{dotted}"]
        alias = field.metadata.get("flag")
        if alias and alias != flags[0]:  # `--workers` on a top-level field is already its own flag
            flags.insert(0, alias)
        default = _lookup(defaults, dotted)
        text = f"{doc} [default: {default}]" if doc else f"[default: {default}]"
        groups[section].add_argument(
            *flags, dest=dotted, default=argparse.SUPPRESS, metavar=_metavar(tp), help=text.replace("%", "%%"),
        )


def _all_defaults(job_cls: type) -> bool:
    try:
        job_cls()
    except TypeError:
        return False
    return True


def _lookup(data: dict, dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def parse_job(parser: argparse.ArgumentParser, job_cls: type, argv: list[str] | None) -> tuple[Any, argparse.Namespace]:
    """Parse argv into a validated job (defaults <- --config <- flags) and the raw namespace."""
    for arg in argv or []:
        flag = arg.split("=", 1)[0]
        if flag.startswith("--") and flag[2:] in RENAMED:
            raise ConfigError(f"--{flag[2:]} is now --{RENAMED[flag[2:]]}")
        if flag.startswith("--") and flag[2:] in REMOVED:
            raise ConfigError(f"--{flag[2:]} was removed: {REMOVED[flag[2:]]}")
    args = parser.parse_args(argv)
    keys = {dotted for dotted, *_ in iter_fields(job_cls)}
    overrides = {k: v for k, v in vars(args).items() if k in keys}
    job = load_job(job_cls, args.config, overrides)
    threads = getattr(getattr(job, "run", None), "threads", None)
    if threads:  # every command honours run.threads, also those (eval, reproduce) that run no trainer
        import torch

        torch.set_num_threads(threads)
    return job, args
