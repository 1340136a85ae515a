"""`cagsr COMMAND [--config YAML] [--key value ...]`: the command-line entry point.

Every subcommand lives in its own module under cagsr/cli/ exposing `main(argv, prog)`; they are
imported lazily so `cagsr --help` stays fast. User errors print one line and exit with code 2.

    cagsr --help
    cagsr sft --help
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

from cagsr.errors import CagsrError

COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("cagsr.cli.train", "reinforcement learning with the history-aware attention reward (PPO)"),
    "sft": ("cagsr.cli.sft", "supervised fine-tuning on agent turns or math solutions"),
    "reward": ("cagsr.cli.reward", "score recorded dialogues or solutions with the attention reward"),
    "eval": ("cagsr.cli.eval", "generate on a split and compute coherence, consistency, accuracy, latency"),
    "validity": ("cagsr.cli.validity", "AUC of each reward component against human good/bad reply labels"),
    "calibrate": ("cagsr.cli.calibrate", "fit the reward's weights and floor to labels, write a preset"),
    "heads": ("cagsr.cli.heads", "score attention heads on a synthetic copy task (retrieval heads), pick the top ones"),
    "reproduce": ("cagsr.cli.reproduce", "run every row of the paper's tables with several seeds"),
    "bench": ("cagsr.cli.bench", "side-by-side speed benchmarks against the machine's floor"),
    "human": ("cagsr.cli.human", "export blinded samples for raters and import their ratings"),
    "report": ("cagsr.cli.report", "self-contained HTML report of runs"),
    "data": ("cagsr.cli.data", "inspect and validate a data file"),
}


def available() -> dict[str, tuple[str, str]]:
    return {name: spec for name, spec in COMMANDS.items() if importlib.util.find_spec(spec[0]) is not None}


def usage() -> str:
    lines = ["usage: cagsr COMMAND [--config YAML] [--key value ...]", "", "commands:"]
    lines += [f"  {name:<10} {spec[1]}" for name, spec in available().items()]
    lines += ["", "Run `cagsr COMMAND --help` for every option of a command."]
    return "\n".join(lines)


PACKAGE = Path(__file__).resolve().parents[1]


@contextmanager
def one_line_warnings(prog: str):
    """cagsr's own warnings print as one line naming the command (`cagsr train: warning: ...`), not as a
    file:line followed by the source line that raised them; a library's warnings keep Python's format."""
    default = warnings.formatwarning

    def format_warning(message, category, filename, lineno, line=None):
        if Path(filename).resolve().is_relative_to(PACKAGE):
            return f"{prog}: warning: {message}\n"
        return default(message, category, filename, lineno, line)

    warnings.formatwarning = format_warning
    try:
        yield
    finally:
        warnings.formatwarning = default


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        sys.exit(0 if argv else 2)
    if argv[0] == "--version":
        from cagsr import __version__

        print(f"cagsr {__version__}")
        return
    commands = available()
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"cagsr: error: unknown command {name!r} (commands: {', '.join(commands)})", file=sys.stderr)
        sys.exit(2)
    try:
        module = importlib.import_module(commands[name][0])
        with one_line_warnings(f"cagsr {name}"):
            module.main(rest, prog=f"cagsr {name}")
    except CagsrError as err:
        sys.stderr.write(f"cagsr {name}: error: {err}\n")  # one write: log threads may be printing too
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"cagsr {name}: interrupted", file=sys.stderr)
        sys.exit(130)
