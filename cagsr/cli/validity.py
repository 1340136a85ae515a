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
stdout / --output.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cagsr.attention.config import AttentionConfig
from cagsr.cli.common import parse_job_args, quiet_libraries
from cagsr.errors import ConfigError
from cagsr.models.config import ModelConfig
from cagsr.reward.config import RewardConfig
from cagsr.utils.run import RunConfig, jsonl_sink


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
    """Reward weights, floor, salience and sink tokens (history_tokens is taken both ways)."""
    run: RunConfig = field(default_factory=RunConfig)
    """Output folder, stdout file, seed, threads."""
    max_context: int = 768
    """Longest history in tokens (older turns are dropped)."""
    boot: int = 1000
    """Bootstrap resamples of the intervals (whole contexts are resampled)."""


def read_replies(data: LabelledData, seed: int) -> tuple[list, int, str]:
    """The rated replies of the file: (replies, skipped rows, 'ratings' or 'taskmaster')."""
    from cagsr.evaluation.ratings import read_rated_replies
    from cagsr.evaluation.taskmaster import sample_per_label

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
    """Load the model and the replies, fit salience on them, score: (score rows, facts for the report)."""
    from cagsr.evaluation.human_validity import score_replies
    from cagsr.models.registry import load_model
    from cagsr.reward.config import resolve_reward
    from cagsr.salience.masks import Salience

    replies, skipped, kind = read_replies(job.data, job.run.seed)
    loaded = load_model(job.model)
    texts = [u.text for r in replies for u in r.dialogue.turns]
    salience = Salience.fit(texts, job.reward.salience, job.reward.idf_quantile, job.reward.keywords,
                            job.reward.entity_detector)
    start = time.perf_counter()
    scores = score_replies(replies, loaded, salience, job.attention, job.reward, job.max_context,
                           progress=job.run.progress, seed=job.run.seed)
    used = resolve_reward(job.reward, loaded.is_encoder_decoder)
    facts = {"model": job.model.name, "data": job.data.path, "format": kind, "aspect": job.data.aspect,
             "drop_systems": job.data.drop_systems, "replies": len(replies), "skipped_rows": skipped,
             "scoring_seconds": round(time.perf_counter() - start, 1),
             "encoder_decoder": loaded.is_encoder_decoder, "sink_tokens": used.sink_tokens,
             "weights": {k: getattr(used, k) for k in ("alpha", "beta", "gamma", "tau0", "kappa", "n")}}
    return scores, facts


def write_report(folder: Path, scores: list[dict], facts: dict, table: list[dict]) -> Path:
    from cagsr.evaluation.human_validity import auc_markdown, sink_summary

    sinks = sink_summary(scores)
    w = facts["weights"]
    text = "\n".join([
        f"# Reward validity against human labels: {facts['model']} on {facts['data']}", "",
        f"{facts['replies']} labelled text replies ({table[0]['good']} good, {table[0]['bad']} bad), each "
        "scored as the last agent turn of its context; AUC of each component for telling good from bad "
        "replies, 95% cluster-bootstrap interval over dialogues. 'all': every history token (the paper's "
        f"reward); 'content': the sink tokens ({facts['sink_tokens']}) left out, attention renormalised over "
        f"the rest. Weights: alpha {w['alpha']}, beta {w['beta']}, gamma {w['gamma']}, floor tau0 {w['tau0']} "
        f"+ kappa {w['kappa']} t, {w['n']}-grams.", "",
        f"Mean share of history attention on the first history token: {sinks['first_mass']:.2f}; "
        f"on all sink tokens: {sinks['sink_mass']:.2f}.", "",
        auc_markdown(table), ""])
    (folder / "validity-human.json").write_text(json.dumps({**facts, **sinks, "table": table}, indent=1))
    path = folder / "validity-human.md"
    path.write_text(text, encoding="utf-8")
    return path


def write_signals(folder: Path, facts: dict, table: list[dict]) -> Path:
    """validity-signals.md / .json: every signal against the human scores."""
    from cagsr.evaluation.signals_report import signals_markdown

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


def main(argv: list[str], prog: str = "cagsr validity") -> None:
    job, _ = parse_job_args(ValidityJob, argv, prog, ValidityJob.__doc__ or "")
    quiet_libraries()
    from cagsr.evaluation.correlation import signal_table
    from cagsr.evaluation.human_validity import auc_table
    from cagsr.evaluation.signals_report import SIGNALS
    from cagsr.utils.run import prepare_run_dir

    scores, facts = score_labelled(job)
    table = signal_table(scores, list(SIGNALS), n_boot=job.boot, seed=job.run.seed)
    folder = prepare_run_dir(job.run.output_dir, "validity", job)
    with (folder / "scores.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(s) + "\n" for s in scores)
    if table and table[0]["binary"]:
        write_report(folder, scores, facts, auc_table(scores, n_boot=job.boot, seed=job.run.seed))
    path = write_signals(folder, facts, table)
    print(f"wrote {path}", file=sys.stderr)
    with jsonl_sink(job.run.output) as write:
        for row in table:
            write(row | {"model": job.model.name, "settings": {"sink_tokens": facts["sink_tokens"]}})
