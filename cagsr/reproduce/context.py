"""What every row and seed of one reproduction shares, built once before the first row runs.

    ctx = ReproduceContext(out=out, data=data, sets={"heldout": items}, embedder=Embedder(),
                           consistency=classifier, reward_models=models, run={"progress": True})
    ctx.sft[0] = Path("runs/x/sft/model")      # supervised model 0, filled as the models are trained

The one pipeline (reproduce/pipeline.py) builds it for every scale: with a stopping rule (medium: a supervised
model per seed, rows trained until their reward rises on the stopping items, several held-out sets) or without
(tiny, small, full: one supervised model, fixed PPO iterations, no stopping items).
"""


from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # heavy modules (sentence-transformers): imported by whoever builds the context
    from cagsr.evaluation.metrics.consistency import ConsistencyClassifier
    from cagsr.evaluation.metrics.embedding import Embedder
    from cagsr.reward.definition import RewardDefinition


@dataclass(kw_only=True)
class ReproduceContext:
    """The shared pieces of one reproduction."""

    out: Path
    """The reproduction's folder (rows, supervised models, reward models, tables)."""
    data: dict
    """DataConfig mapping of the training pool: what SFT, the reward models and RL read."""
    sets: dict[str, list]
    """Held-out set name -> its items (dialogues or problems); the first is the main set."""
    embedder: Embedder
    """Sentence embedder of the coherence metric, loaded once."""
    consistency: ConsistencyClassifier | None
    """The on-topic classifier (dialogue tables; None for chain of thought)."""
    reward_models: dict[str, Path]
    """Reward-model name (synthetic, human) -> its folder; a name is missing when it had no data."""
    run: dict = field(default_factory=dict)
    """RunConfig values every SFT and RL job of the reproduction gets (progress, threads)."""
    check: list = field(default_factory=list)
    """The stopping items (disjoint from the held-out sets and the pool); empty for plans without a stopping rule."""
    sft: dict[int, Path] = field(default_factory=dict)
    """Supervised model seed -> its weights' folder (plans without a stopping rule: model 0 only)."""
    sft_records: dict[int, dict] = field(default_factory=dict)
    """Supervised model seed -> its training record (steps, stop step, validation losses)."""
    table_reward: RewardDefinition | None = None
    """The reward every row of the table is scored with (the CAGSR multi-turn row's), built once on first use."""

    @property
    def main_set(self) -> list:
        """The items of the first held-out set."""
        return next(iter(self.sets.values()))
