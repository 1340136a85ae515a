"""The `cagsr validity` job: score human-labelled replies under both versions of the reward and write the
AUC report (validity-human.md / .json) and scores.jsonl (the input of `cagsr calibrate --scores`).

    table, report, facts = run_validity(job)
"""

from __future__ import annotations

import json
import time
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
    """A file of human-rated replies."""

    path: str = field(default="../shared/data/taskmaster4_reward.jsonl", metadata={"flag": "--data"})
    """JSON Lines or Parquet: rated replies (turns whose last is the reply, scores per aspect; the format of
    ../shared/data/ratings/README.md) or the Taskmaster-4 reward format (context, generation, reward 0/1)."""
    aspect: str = field(default="overall", metadata={"flag": "--aspect"})
    """Which score of a rated reply to measure against (the Taskmaster-4 format has only its 0/1 reward)."""
    drop_systems: list[str] = field(default_factory=list)
    """Leave out the replies whose meta.model is one of these, e.g. "Original Ground Truth" (USR-PersonaChat's
    ground-truth replies, left out in the published metric comparison)."""
    limit: int | None = field(default=None, metadata={"flag": "--limit"})
    """Read only the first N text replies."""
    max_per_label: int | None = None
    """Score a seeded sample of at most this many replies of each label (the AUC does not depend on the
    ratio of good to bad replies, so the rarer label can be kept whole and the compute spent on it)."""


@dataclass
class ValidityJob:
    """`cagsr validity`: every signal of the scoring pass against human ratings (Spearman, Pearson or AUC)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """The model whose attention is read (a preset, a model folder or a cagsr run folder)."""
    data: LabelledData = field(default_factory=LabelledData)
    """The rated replies (human scores or 0/1 labels)."""
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
    """Bootstrap resamples of the intervals (whole contexts are resampled)."""
    reward_from: Literal["run", "settings"] = field(default="run", metadata={"flag": "--reward-from"})
    """Which reward scores (history_tokens is taken both ways either way). run: the reward saved with --model
    when it is a cagsr run folder (RUN/reward.yaml, salience with the run's fitted IDF table); settings: this
    command's reward, salience and attention settings (salience fitted on the labelled replies)."""


def read_replies(data: LabelledData, seed: int) -> tuple[list, int, str]:
    """The rated replies of the file: (replies, skipped rows, 'ratings' or 'taskmaster')."""
    from cagsr.data.taskmaster import sample_per_label
    from cagsr.evaluation.analysis.ratings import read_rated_replies

    replies, skipped, kind = read_rated_replies(Path(data.path), data.aspect, data.limit, data.drop_systems)
    binary = {r.label for r in replies} <= {0.0, 1.0}
    if data.max_per_label is not None:
        if not binary:
            raise ConfigError("data.max_per_label: only for 0/1 labels; use --limit on continuous ratings")
        replies = sample_per_label(replies, data.max_per_label, seed)
    if len({r.label for r in replies}) < 2:
        raise ConfigError(f"{data.path}: the replies need at least two different scores (both labels for 0/1)")
    return replies, skipped, kind


def score_labelled(job) -> tuple[list[dict], dict]:
    """Load the model and the replies, score them under the run's reward (--model a run folder) or the job's
    settings with salience fitted on the replies: (score rows, facts for the report)."""
    from cagsr.evaluation.analysis.human_validity import score_replies
    from cagsr.models.registry import load_model
    from cagsr.rollout.config import RolloutConfig
    from cagsr.scoring.probe import WEIGHTS

    replies, skipped, kind = read_replies(job.data, job.run.seed)
    loaded = load_model(job.model)
    definition = command_definition(job, loaded, lambda: [u.text for r in replies for u in r.dialogue.turns],
                                    RolloutConfig().max_steps)
    used = definition.terms
    start = time.perf_counter()
    scores = score_replies(replies, loaded, definition.salience_marker(), definition.attention_config(), used,
                           job.max_context, progress=job.run.progress, seed=job.run.seed)
    facts = {"model": job.model.name, "data": job.data.path, "format": kind, "aspect": job.data.aspect,
             "drop_systems": job.data.drop_systems, "replies": len(replies), "skipped_rows": skipped,
             "scoring_seconds": round(time.perf_counter() - start, 1),
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


def write_signals(folder: Path, facts: dict, table: list[dict]) -> Path:
    """validity-signals.md / .json: every signal against the human scores."""
    from cagsr.evaluation.analysis.signals_report import signals_markdown

    what = ("0/1 labels: AUC for telling good from bad" if table and table[0]["binary"] else
            f"the mean human '{facts['aspect']}' score: Spearman and Pearson")
    dropped = f", systems left out: {', '.join(facts['drop_systems'])}" if facts["drop_systems"] else ""
    text = "\n".join([
        f"# Every signal against human ratings: {facts['model']} on {facts['data']}", "",
        f"{facts['replies']} rated replies ({facts['skipped_rows']} rows skipped{dropped}), each scored as the "
        f"last agent turn of its context in one pass ({facts['scoring_seconds']} s). Against {what}; 95% "
        "bootstrap intervals resample contexts; the partial Spearman correlation holds reply length (tokens "
        "of the scoring model) fixed. 'all/' and 'content/': the reward's components over every history token "
        f"and with the sink tokens ({facts['sink_tokens']}) left out.", "",
        signals_markdown(table), ""])
    (folder / "validity-signals.json").write_text(json.dumps({**facts, "table": table}, indent=1))
    path = folder / "validity-signals.md"
    path.write_text(text, encoding="utf-8")
    return path


def run_validity(job: ValidityJob) -> tuple[list[dict], Path, dict]:
    """Score, compute every signal's correlation (or AUC) with the human scores, write the run folder:
    (one row per signal, the report's path, facts)."""
    from cagsr.evaluation.analysis.correlation import signal_table
    from cagsr.evaluation.analysis.human_validity import auc_table
    from cagsr.evaluation.analysis.signals_report import SIGNALS
    from cagsr.utils.run import prepare_run_dir

    scores, facts = score_labelled(job)
    table = signal_table(scores, list(SIGNALS), n_boot=job.boot, seed=job.run.seed)
    folder = prepare_run_dir(job.run.output_dir, "validity", job)
    with (folder / "scores.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(s) + "\n" for s in scores)
    if table and table[0]["binary"]:
        write_report(folder, scores, facts, auc_table(scores, n_boot=job.boot, seed=job.run.seed))
    return table, write_signals(folder, facts, table), facts
