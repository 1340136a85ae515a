"""The `cagsr validity` job: score human-labelled replies under both versions of the reward and write the
AUC report (validity-human.md / .json) and scores.jsonl (the input of `cagsr calibrate --scores`).

    table, report, facts = run_validity(job)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cagsr.attention.config import AttentionConfig
from cagsr.errors import ConfigError
from cagsr.models.config import ModelConfig
from cagsr.reward.config import RewardConfig
from cagsr.reward.definition import command_definition
from cagsr.salience.config import SalienceConfig
from cagsr.utils.run import RunConfig


@dataclass
class LabelledData:
    """A file of human-labelled replies."""

    path: str = field(default="../shared/data/taskmaster4_reward.jsonl", metadata={"flag": "--data"})
    """JSON Lines in the Taskmaster-4 reward format (context, generation, reward 0/1)."""
    limit: int | None = field(default=None, metadata={"flag": "--limit"})
    """Read only the first N text replies."""
    max_per_label: int | None = None
    """Score a seeded sample of at most this many replies of each label (the AUC does not depend on the
    ratio of good to bad replies, so the rarer label can be kept whole and the compute spent on it)."""


@dataclass
class ValidityJob:
    """`cagsr validity`: AUC of every reward component against human good/bad labels, in both versions."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """The model whose attention is read (a preset, a model folder or a cagsr run folder)."""
    data: LabelledData = field(default_factory=LabelledData)
    """The labelled replies."""
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    """Attention capture settings."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """Reward weights, floor and sink tokens (history_tokens is taken both ways)."""
    salience: SalienceConfig = field(default_factory=SalienceConfig)
    """Salient-token sources, fitted on the labelled replies."""
    run: RunConfig = field(default_factory=RunConfig)
    """Output folder, stdout file, seed, threads."""
    max_context: int = 768
    """Longest history in tokens (older turns are dropped)."""
    boot: int = 1000
    """Bootstrap resamples of the AUC intervals (whole dialogues are resampled)."""
    reward_from: Literal["run", "settings"] = field(default="run", metadata={"flag": "--reward-from"})
    """Which reward scores (history_tokens is taken both ways either way). run: the reward saved with --model
    when it is a cagsr run folder (RUN/reward.yaml, salience with the run's fitted IDF table); settings: this
    command's reward, salience and attention settings (salience fitted on the labelled replies)."""


def score_labelled(job) -> tuple[list[dict], dict]:
    """Load the model and the replies, score them under the run's reward (--model a run folder) or the job's
    settings with salience fitted on the replies: (score rows, facts for the report)."""
    from cagsr.data.taskmaster import read_labelled_replies, sample_per_label
    from cagsr.evaluation.analysis.human_validity import score_replies
    from cagsr.models.registry import load_model
    from cagsr.rollout.config import RolloutConfig
    from cagsr.scoring.probe import WEIGHTS

    replies, skipped = read_labelled_replies(Path(job.data.path), job.data.limit)
    if job.data.max_per_label is not None:
        replies = sample_per_label(replies, job.data.max_per_label, job.run.seed)
    if len({r.label for r in replies}) < 2:
        raise ConfigError(f"{job.data.path}: the replies need both labels (good and bad) for an AUC")
    loaded = load_model(job.model)
    definition = command_definition(job, loaded, lambda: [u.text for r in replies for u in r.dialogue.turns],
                                    RolloutConfig().max_steps)
    used = definition.terms
    scores = score_replies(replies, loaded, definition.salience_marker(), definition.attention_config(), used,
                           job.max_context, progress=job.run.progress)
    facts = {"model": job.model.name, "data": job.data.path, "replies": len(replies), "skipped_api_rows": skipped,
             "encoder_decoder": loaded.is_encoder_decoder, "sink_tokens": used.sink_tokens,
             "weights": {k: getattr(used, k) for k in WEIGHTS}}
    return scores, facts


def write_report(folder: Path, scores: list[dict], facts: dict, table: list[dict]) -> Path:
    from cagsr.evaluation.analysis.human_validity import auc_markdown, sink_summary

    sinks = sink_summary(scores)
    w = facts["weights"]
    text = "\n".join([
        f"# Reward validity against human labels: {facts['model']} on {facts['data']}", "",
        f"{facts['replies']} labelled text replies ({table[0]['good']} good, {table[0]['bad']} bad), each "
        "scored as the last agent turn of its context; AUC of each component for telling good from bad "
        "replies, 95% cluster-bootstrap interval over dialogues. 'all': every history token (the paper's "
        f"reward); 'content': the sink tokens ({facts['sink_tokens']}) left out, attention renormalised over "
        f"the rest. Weights: coverage {w['coverage_weight']}, focus {w['focus_weight']}, repetition "
        f"{w['repetition_weight']}, floor tau0 {w['tau0']} + kappa {w['kappa']} t, {w['repetition_ngram']}-grams.", "",
        f"Mean share of history attention on the first history token: {sinks['first_mass']:.2f}; "
        f"on all sink tokens: {sinks['sink_mass']:.2f}.", "",
        auc_markdown(table), ""])
    (folder / "validity-human.json").write_text(json.dumps({**facts, **sinks, "table": table}, indent=1))
    path = folder / "validity-human.md"
    path.write_text(text, encoding="utf-8")
    return path


def run_validity(job: ValidityJob) -> tuple[list[dict], Path, dict]:
    """Score, compute the AUC table, write the run folder: (AUC rows, the report's path, facts)."""
    from cagsr.evaluation.analysis.human_validity import auc_table
    from cagsr.utils.run import prepare_run_dir

    scores, facts = score_labelled(job)
    table = auc_table(scores, n_boot=job.boot, seed=job.run.seed)
    folder = prepare_run_dir(job.run.output_dir, "validity", job)
    with (folder / "scores.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(s) + "\n" for s in scores)
    return table, write_report(folder, scores, facts, table), facts
