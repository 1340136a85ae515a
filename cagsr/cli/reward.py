"""`cagsr reward`: score recorded dialogues or solutions with any model's attention reward.

    cagsr reward --model smollm2-135m --data ../shared/data/star_dialogues.jsonl --limit 20 --plot out/
One JSON line per turn: coverage, entropy, focus, repetition, reward, history mass, sink mass, salient words,
and the reward version they were computed with (reward.history_tokens, reward.sink_tokens, weights).
A run folder as --model is scored with the run's own reward (RUN/reward.yaml) unless --reward-from settings:

    cagsr reward --model runs/dialogue --heldout true   # the run's held-out episodes, as the run logged them
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cagsr.attention.config import AttentionConfig
from cagsr.cli.common import command_definition, parse_job_args, quiet_libraries
from cagsr.data.config import DataConfig
from cagsr.models.config import ModelConfig
from cagsr.reward.config import RewardConfig
from cagsr.salience.config import SalienceConfig
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


def score_job(job: RewardJob) -> tuple[list[dict], list[Path]]:
    """The rows of every scored turn (or held-out episode) and the heatmap files drawn (cagsr.api.score runs
    this too)."""
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
        return heldout_rows(job, loaded, definition), []
    episodes = recorded_episodes(records, loaded, job.max_context, job.max_turns, definition.max_steps)
    rows = probe(episodes, loaded, definition, job=saved_train_job(Path(job.model.name)))
    paths = []
    if job.plot:
        paths = plot_episodes(episodes[: job.plot_episodes], loaded, definition, Path(job.plot))
    return rows, list(paths)


def saved_train_job(run: Path):
    """The TrainJob a run folder saved (what its reward parts read as `job`), or None."""
    from cagsr.config import load_saved_job
    from cagsr.ppo.config import TrainJob

    return load_saved_job(TrainJob, run / "config.yaml", {}) if (run / "config.yaml").is_file() else None


def heldout_rows(job: RewardJob, loaded, definition) -> list[dict]:
    """The run's held-out episodes of its last evaluation, rebuilt token for token and scored as the run
    scored them: one row per episode with the keys of RUN/eval_episodes.jsonl (KL to the reference left out)."""
    from cagsr.errors import ConfigError
    from cagsr.ppo.heldout import FILE, episode_rows, read_rows
    from cagsr.rollout.recorded import replayed_episode
    from cagsr.scoring.config import ScoringConfig
    from cagsr.scoring.probe import score_heldout

    run = Path(job.model.name)
    logged = [r for r in read_rows(run) if "replay" in r]
    if not logged:
        raise ConfigError(f"--heldout: {run / FILE} holds no held-out episodes to replay (not a cagsr run folder, "
                          "or one written before replays were logged)")
    last = [r for r in logged if r["block"] == logged[-1]["block"]]
    episodes = [replayed_episode(r["replay"], loaded, definition.max_steps) for r in last]
    saved = saved_train_job(run)
    _, scores, turn = score_heldout(loaded, episodes, definition, saved.scoring if saved else ScoringConfig(), saved)
    comps = {**scores.components, "reward": turn.attention}
    rows = episode_rows(last[0]["updates"], episodes, comps, turn.parts, [math.nan] * len(episodes), turn.total)
    return [{k: v for k, v in row.items() if k not in ("block", "kl_ref")} for row in rows]


def main(argv: list[str], prog: str = "cagsr reward") -> None:
    job, _ = parse_job_args(RewardJob, argv, prog, RewardJob.__doc__ or "")
    quiet_libraries()
    rows, paths = score_job(job)
    with jsonl_sink(job.run.output) as write:
        for row in rows:
            write(row)
    if job.plot:
        print(f"wrote {len(paths)} heatmaps to {job.plot}", file=sys.stderr)
