"""The `cagsr reward` job (also cagsr.api.score): per-turn attention-reward components of recorded data under
a model, and heatmaps of the first episodes. A run folder as --model is scored with the run's own reward
(RUN/reward.yaml) unless --reward-from settings.

    rows, heatmaps = score_job(RewardJob(model=ModelConfig("smollm2-135m"), data=DataConfig(path=...)))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cagsr.attention.config import AttentionConfig
from cagsr.data.config import DataConfig
from cagsr.errors import ConfigError
from cagsr.models.config import ModelConfig
from cagsr.reward.config import RewardConfig
from cagsr.reward.definition import command_definition
from cagsr.salience.config import SalienceConfig
from cagsr.utils.run import RunConfig

HeldoutScorer = Callable[..., list[dict]]
"""(job, loaded model, reward definition) -> one row per held-out episode of the run."""


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
    """Reward settings (weights, floor)."""
    salience: SalienceConfig = field(default_factory=SalienceConfig)
    """Salient-token sources, fitted on the data."""
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
    reward_from: Literal["run", "settings"] = field(default="run", metadata={"flag": "--reward-from"})
    """Which reward scores. run: the reward saved with --model when it is a cagsr run folder (RUN/reward.yaml:
    parts and weights, capture settings, salience sources with the fitted IDF table, turn weights, chain-of-thought
    step split); settings: this command's own reward, salience and attention settings (salience fitted on --data)."""
    heldout: bool = field(default=False, metadata={"flag": "--heldout"})
    """Score the run's own held-out episodes of its last evaluation (RUN/eval_episodes.jsonl, rebuilt token for
    token) instead of --data: one line per episode with the numbers the run logged for it."""


def score_job(job: RewardJob, *, saved_job=None, heldout: HeldoutScorer | None = None
              ) -> tuple[list[dict], list[Path]]:
    """The rows of every scored turn (or held-out episode) and the heatmap files drawn (cagsr.api.score runs
    this too). saved_job: the TrainJob a run folder saved (what its reward parts read as `job`); heldout: what
    scores a run's held-out episodes (ppo.heldout.heldout_rows: run folders are the trainer's, a floor up)."""
    from cagsr.data.sources import corpus_texts, load_records
    from cagsr.models.registry import load_model
    from cagsr.rollout.config import RolloutConfig
    from cagsr.rollout.recorded import recorded_episodes
    from cagsr.scoring.probe import plot_episodes, probe

    records = [] if job.heldout else load_records(job.data)
    loaded = load_model(job.model)
    definition = command_definition(job, loaded, lambda: corpus_texts(records or load_records(job.data)),
                                    RolloutConfig().max_steps)
    if job.heldout:
        if heldout is None:
            raise ConfigError("--heldout: this caller cannot replay a run's held-out episodes")
        return heldout(job, loaded, definition), []
    episodes = recorded_episodes(records, loaded, job.max_context, job.max_turns, definition.max_steps)
    rows = probe(episodes, loaded, definition, job=saved_job, seed=job.run.seed)
    paths = []
    if job.plot:
        paths = plot_episodes(episodes[: job.plot_episodes], loaded, definition, Path(job.plot))
    return rows, list(paths)
