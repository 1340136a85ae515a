"""Which row-seeds a reproduction runs, and in what order: the schedule, and the further seeds a one-seed
row earns when its first comparison is decided."""

from __future__ import annotations

from cagsr.reproduce.claims import METRICS, claims_for, judge
from cagsr.reproduce.plan import ReproducePlan
from cagsr.reproduce.results import Reproduction
from cagsr.reproduce.tables import Row


def schedule(rows: list[Row], plan: ReproducePlan) -> list[tuple[Row, int]]:
    """(row, seed) in the order they run: the first two seeds of the core rows and of rows with a seed count
    of their own (the controls), every other row's first seed, then the remaining seeds (seed by seed); so a
    time budget cuts seed spread last and the central comparisons never.

    >>> core, other, three = Row("a", core=True), Row("b"), Row("c", seeds=3)
    >>> [(r.name, s) for r, s in schedule([core, other, three], ReproducePlan(seeds_core=3, sft_seeds=3))]
    [('a', 0), ('c', 0), ('a', 1), ('c', 1), ('b', 0), ('a', 2), ('c', 2)]
    """
    def seeds(row: Row) -> range:  # a row's own seed count is for plans that stop rows when they have risen
        return range(plan.seeds(row.core, row.rl, row.seeds if plan.stop else None))

    def central(row: Row) -> bool:
        return row.core or (plan.stop is not None and row.seeds is not None)

    first = [(r, s) for s in range(2) for r in rows if central(r) and s in seeds(r)]
    middle = [(r, 0) for r in rows if not central(r) and 0 in seeds(r)]
    most = max((len(seeds(r)) for r in rows), default=0)
    rest = [(r, s) for s in range(1, most) for r in rows if s in seeds(r) and (r, s) not in first]
    return first + middle + rest


def follow_up(rows: list[Row], rep: Reproduction, items: dict, plan: ReproducePlan, sets: list[str]) -> list[Row]:
    """One-seed rows compared with No-RL and CAGSR multi-turn (versus_multi_turn, no seed count of their own)
    whose seed-0 comparison on a quality metric of the main set holds or is reversed: they get the core rows'
    further seeds, so no verdict rests on one seed. Plans without a stopping rule take --seeds instead."""
    if plan.stop is None or not sets:
        return []
    candidates = [r for r in rows if r.versus_multi_turn and r.seeds is None and r.name in rep.results]
    quality = [m for m in METRICS[rep.table] if m != "reward"]
    claims = [c for c in claims_for(rep.table, sets[:1], set(rep.results))
              if c.a in {r.name for r in candidates} and c.metric in quality]
    # Seed 0 alone decides, also on a rerun that has reloaded the further seeds (the decision must not move).
    names = {c.a for c in claims}
    first = {key: values[:1] if key[0] in names else values for key, values in items.items()}
    decided = {r["a"] for r in judge(claims, first, plan.n_boot, plan.sft_seeds) if r["verdict"] != "not shown"}
    return [r for r in candidates if r.name in decided]


