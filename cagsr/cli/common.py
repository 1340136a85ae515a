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


def command_definition(job, loaded, corpus, max_steps: int):
    """The reward a command that reads a model scores with: the run's own definition (job.reward_from = run and
    --model a run folder that has one), else the one the job's settings define, salience fitted on corpus()."""
    import sys

    from cagsr.attention.config import AttentionConfig
    from cagsr.reward.config import RewardConfig
    from cagsr.reward.definition import define_reward, find_definition
    from cagsr.salience.config import SalienceConfig

    if getattr(job, "reward_from", "settings") == "run" and (found := find_definition(job.model.name)) is not None:
        print(f"scoring with the reward of {job.model.name} (its reward.yaml; --reward-from settings for this "
              "command's own)", file=sys.stderr)
        return found
    return define_reward(getattr(job, "reward", None) or RewardConfig(), getattr(job, "salience", None) or
                        SalienceConfig(), getattr(job, "attention", None) or AttentionConfig(), max_steps=max_steps,
                        corpus=corpus(), encoder_decoder=loaded.is_encoder_decoder)
