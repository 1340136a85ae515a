"""The `cagsr reward` job (also cagsr.api.score): per-turn attention-reward components of recorded data under
a model, and heatmaps of the first episodes.

    rows, heatmaps = score_job(RewardJob(model=ModelConfig("smollm2-135m"), data=DataConfig(path=...)))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cagsr.attention.config import AttentionConfig
from cagsr.data.config import DataConfig
from cagsr.models.config import ModelConfig
from cagsr.reward.config import RewardConfig
from cagsr.utils.run import RunConfig


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
    rows = probe(episodes, loaded, salience, job.attention, job.reward)
    paths = []
    if job.plot:
        paths = plot_episodes(episodes[: job.plot_episodes], loaded, salience, job.attention, Path(job.plot),
                              job.reward)
    return rows, list(paths)
