"""`cagsr validity`: how well every signal of the scoring pass tracks human judgement of replies.

    cagsr validity --model smollm2-135m --data ../shared/data/ratings/fed_turn.jsonl --output-dir runs/v
    cagsr validity --data ../shared/data/ratings/usr_personachat.jsonl --data.drop_systems "Original Ground Truth"
    cagsr validity --model smollm2-135m --data ../shared/data/taskmaster4_reward.jsonl --output-dir runs/v
Reads rated replies (../shared/data/ratings/README.md: `turns`, `scores` per aspect; --aspect picks one) or
the Taskmaster-4 reward format (context, generation, 0/1 reward), JSON Lines or Parquet. Each reply is scored
as the last agent turn of its context in one capture pass: the reward's components under both versions (all
history tokens, content tokens only), the log-prob signals and the controls. Continuous scores get Spearman
and Pearson, 0/1 ones the AUC, each with a bootstrap interval over contexts and the partial correlation given
reply length. Writes validity-signals.md / .json, scores.jsonl (one line per reply, the input of `cagsr
calibrate --scores`) and, for 0/1 labels, validity-human.md to --output-dir; one row per signal goes to
stdout / --output. A run folder as --model is scored with the run's own reward unless --reward-from settings.
The job is cagsr/evaluation/analysis/validity_job.py; this module parses and prints.
"""

from __future__ import annotations

import sys

from cagsr.cli.common import parse_job_args, quiet_libraries
from cagsr.evaluation.analysis.validity_job import ValidityJob
from cagsr.utils.run import jsonl_sink


def main(argv: list[str], prog: str = "cagsr validity") -> None:
    job, _ = parse_job_args(ValidityJob, argv, prog, ValidityJob.__doc__ or "")
    quiet_libraries()
    from cagsr.evaluation.analysis.validity_job import run_validity

    table, path, facts = run_validity(job)
    print(f"wrote {path}", file=sys.stderr)
    with jsonl_sink(job.run.output) as write:
        for row in table:
            write(row | {"model": job.model.name, "settings": {"sink_tokens": facts["sink_tokens"]}})
