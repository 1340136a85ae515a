"""`cagsr reward`: score recorded dialogues or solutions with any model's attention reward.

    cagsr reward --model smollm2-135m --data ../shared/data/star_dialogues.jsonl --limit 20 --plot out/
One JSON line per turn: coverage, entropy, focus, repetition, reward, history mass, sink mass, the log-prob
signals of the same pass (logprob, predictive_entropy, self_certainty, length_tokens), the controls
(length_words, random seeded by --seed), salient words, and the reward version they were computed with
(reward.history_tokens, reward.sink_tokens, weights).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from cagsr.attention.config import AttentionConfig
from cagsr.cli.common import parse_job_args, quiet_libraries
from cagsr.data.config import DataConfig
from cagsr.models.config import ModelConfig
from cagsr.reward.config import RewardConfig
from cagsr.utils.run import RunConfig, jsonl_sink


@dataclass
class RewardJob:
    """`cagsr reward`: per-turn attention-reward components of recorded data under a model."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """The model whose attention is read."""
    data: DataConfig = field(default_factory=lambda: DataConfig(val_fraction=0.0))
    """Recorded dialogues or math problems."""
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    """Attention capture settings."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """Reward settings (weights, floor, salience)."""
    run: RunConfig = field(default_factory=RunConfig)
    """Output and seed."""
    plot: str | None = field(default=None, metadata={"flag": "--plot"})
    """Folder for attention heatmaps (PNG) of the first --plot-episodes episodes."""
    plot_episodes: int = field(default=2, metadata={"flag": "--plot-episodes"})
    """How many episodes to draw."""
    max_turns: int | None = 6
    """Score at most this many agent turns per dialogue (None: all)."""
    max_context: int = 768
    """Longest history in tokens (older turns are dropped)."""


def score_job(job: RewardJob) -> tuple[list[dict], list[Path]]:
    """The rows of every scored turn and the heatmap files drawn (cagsr.api.score runs this too)."""
    from cagsr.data.sources import corpus_texts, load_records
    from cagsr.models.registry import load_model
    from cagsr.rollout.recorded import recorded_episodes
    from cagsr.salience.masks import Salience
    from cagsr.scoring.probe import plot_episodes, probe

    records = load_records(job.data)
    loaded = load_model(job.model)
    salience = Salience.fit(corpus_texts(records), job.reward.salience, job.reward.idf_quantile,
                            job.reward.keywords, job.reward.entity_detector)
    episodes = recorded_episodes(records, loaded, job.max_context, job.max_turns)
    rows = probe(episodes, loaded, salience, job.attention, job.reward, seed=job.run.seed)
    paths = []
    if job.plot:
        paths = plot_episodes(episodes[: job.plot_episodes], loaded, salience, job.attention, Path(job.plot),
                              job.reward)
    return rows, list(paths)


def main(argv: list[str], prog: str = "cagsr reward") -> None:
    job, _ = parse_job_args(RewardJob, argv, prog, RewardJob.__doc__ or "")
    quiet_libraries()
    rows, paths = score_job(job)
    with jsonl_sink(job.run.output) as write:
        for row in rows:
            write(row)
    if job.plot:
        print(f"wrote {len(paths)} heatmaps to {job.plot}", file=sys.stderr)
