"""`cagsr reward`: score recorded dialogues or solutions with any model's attention reward.

    cagsr reward --model smollm2-135m --data ../shared/data/star_dialogues.jsonl --limit 20 --plot out/
One JSON line per turn: coverage, entropy, focus, repetition, reward, history mass, sink mass, the log-prob
signals of the same pass (logprob, predictive_entropy, self_certainty, length_tokens), the controls
(length_words, random seeded by --seed), salient words, and the reward version they were computed with
(reward.history_tokens, reward.sink_tokens, weights).
A run folder as --model is scored with the run's own reward (RUN/reward.yaml) unless --reward-from settings:

    cagsr reward --model runs/dialogue --heldout true   # the run's held-out episodes, as the run logged them
The job is cagsr/scoring/job.py; this module parses and prints.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cagsr.cli.common import parse_job_args, quiet_libraries
from cagsr.scoring.job import RewardJob, score_job
from cagsr.utils.run import jsonl_sink


def main(argv: list[str], prog: str = "cagsr reward") -> None:
    job, _ = parse_job_args(RewardJob, argv, prog, RewardJob.__doc__ or "")
    quiet_libraries()
    from cagsr.ppo.heldout import heldout_rows, saved_train_job

    rows, paths = score_job(job, saved_job=saved_train_job(Path(job.model.name)), heldout=heldout_rows)
    with jsonl_sink(job.run.output) as write:
        for row in rows:
            write(row)
    if job.plot:
        print(f"wrote {len(paths)} heatmaps to {job.plot}", file=sys.stderr)
