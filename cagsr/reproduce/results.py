"""What a reproduction gives (Reproduction) and the pieces every row shares: its folder name, whether its config
can be built, the reward every row's generated text is scored with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cagsr.config import from_dict, set_dotted
from cagsr.ppo.config import TrainJob
from cagsr.reproduce.context import ReproduceContext
from cagsr.reproduce.tables import Row


@dataclass
class Reproduction:
    table: str
    scale: str
    out: Path
    results: dict[str, list[dict]] = field(default_factory=dict)
    """Row name -> one eval summary per seed."""
    compute: dict[str, list[float]] = field(default_factory=dict)
    """Row name -> wall seconds (train + eval) per seed."""
    eval_rows: list[dict] = field(default_factory=list)
    """Every evaluated turn of every row and seed (for the validity report)."""
    unavailable: dict[str, str] = field(default_factory=dict)
    """Row name -> why it did not run (a config key this version lacks, no data for its reward model)."""
    stops: dict[str, list[dict]] = field(default_factory=dict)
    """Medium: row name -> per seed, when and why RL stopped (iterations, interval, KL to the reference)."""
    sft: list[dict] = field(default_factory=list)
    """Medium: per seed, the supervised model's steps, stop step and validation losses."""
    paired: list[dict] = field(default_factory=list)
    """Medium: one paired comparison per claim (interval, seed differences, verdict)."""
    by_position: list[dict] = field(default_factory=list)
    """Medium dialogue: the same comparisons for multi-turn at each agent-turn position (claims.POSITIONS)."""
    sets: dict[str, int] = field(default_factory=dict)
    """Medium: held-out set name -> number of items (the first is the main set)."""
    skipped: list[str] = field(default_factory=list)
    """Medium: "row (seed s)" not finished: not started within --budget-minutes, or --render-only (a rerun continues)."""
    workers: int = 1
    """Processes that ran row-seeds in this invocation (--workers)."""
    items: dict[tuple[str, str, str], list[dict[str, float]]] = field(default_factory=dict)
    """(row, held-out set or position set, metric) -> per seed, in seed order, item id -> mean over its turns:
    what the paired comparisons resample."""


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def row_problem(row: Row, overrides: dict, data: dict, model: str) -> str | None:
    """Why this row's TrainJob cannot be built (e.g. a reward key this version lacks), or None."""
    from cagsr.errors import ConfigError

    if not row.rl:
        return None
    config: dict = {"model": {"name": model}, "data": data}
    for key, value in {**overrides, **row.overrides}.items():
        set_dotted(config, key, value)
    try:
        from_dict(TrainJob, config)
    except ConfigError as err:
        return str(err).split(" (valid:")[0]
    return None


def table_reward(ctx: ReproduceContext, shared: TrainJob, loaded):
    """The reward every row of a table is scored with: the one the table's CAGSR multi-turn row trains on (the
    shared settings, salience fitted on the RL training records), so the reward column compares all rows
    under one reward; each row's own reward decides only when it stops (stopping.check_scores). Built once."""
    if ctx.table_reward is None:
        from cagsr.reproduce.stopping import job_reward

        ctx.table_reward = job_reward(shared, loaded)
    return ctx.table_reward
