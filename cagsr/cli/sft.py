"""`cagsr sft`: supervised fine-tuning; prints sample replies as JSON Lines at the end.

    cagsr sft --model smollm2-135m --data ../shared/data/gsm8k_train.jsonl --max-steps 30
"""

from __future__ import annotations

import sys

from cagsr.cli.common import parse_job_args, quiet_libraries
from cagsr.sft.config import SFTJob
from cagsr.utils.run import jsonl_sink


def main(argv: list[str], prog: str = "cagsr sft") -> None:
    job, _ = parse_job_args(SFTJob, argv, prog, SFTJob.__doc__ or "")
    quiet_libraries()
    from cagsr.sft.trainer import run_sft

    result = run_sft(job)
    first, kept = result.val_losses[0][1], dict(result.val_losses)[result.kept_step]
    print(f"validation loss {first:.4f} -> {kept:.4f}; the weights of step {result.kept_step} saved to "
          f"{result.run_dir / 'model'}", file=sys.stderr)
    with jsonl_sink(job.run.output) as write:
        for sample in result.samples:
            write(sample)
