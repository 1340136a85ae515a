"""Per-turn latency of every generation engine, side by side in one process, against the machine's floor.

    .venv/bin/python benchmarks/engines.py --quick                          # smoke test, ~1 minute
    .venv-vllm/bin/python benchmarks/engines.py --output-dir runs/bench     # the full table, with vLLM rows
    .venv/bin/python benchmarks/engines.py --sections single t5 --repeats 3

Every BenchConfig field is a flag (--prompt-tokens 256, --engines baseline lean, ...). The report is
printed and, with --output-dir, written to bench.md and bench.json. `cagsr bench` runs the same code.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from cagsr.bench import BenchConfig, run  # noqa: E402
from cagsr.bench.config import ENGINES, SECTIONS  # noqa: E402


def parse(argv: list[str] | None = None) -> BenchConfig:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for f in dataclasses.fields(BenchConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if f.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", default=default)
        elif f.name in ("engines", "sections"):
            parser.add_argument(
                flag, nargs="+", default=default, choices=ENGINES if f.name == "engines" else SECTIONS
            )
        elif f.name == "output_dir":
            parser.add_argument(flag, default=default)
        else:
            kind = type(default)
            parser.add_argument(flag, type=kind, default=default)
    return BenchConfig(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    print(run(parse()))
