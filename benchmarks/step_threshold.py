"""The measurement behind the step-matching threshold of step_correctness (0.85): the table in the docstring
of cagsr/evaluation/metrics/step_threshold.py.

    .venv/bin/python benchmarks/step_threshold.py ../shared/data/gsm8k_train.jsonl --problems 200
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cagsr.data.readers import read_jsonl_records
from cagsr.evaluation.metrics.embedding import Embedder
from cagsr.evaluation.metrics.step_threshold import measure, table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="GSM8K train in the math JSON Lines format")
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    problems = list(read_jsonl_records(args.path, kind="math", limit=args.problems))
    print(table(measure(problems, Embedder(), seed=args.seed)))


if __name__ == "__main__":
    main()
