"""Held-out splits of a reproduction, written once and checked disjoint by record id.

    splits = make_splits(records, "cot", plan, folder)    # folder/{pool,check,heldout,easy}.jsonl
    splits.pool       # what SFT, the reward models and RL read (data.path = folder/pool.jsonl)
    splits.sets       # {"gsm8k": [...], "easy": [...]} or {"star": [...]}: every row is judged on these

The shuffle is seeded, so a resumed reproduction reads the same files; an existing folder is reused.
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass
from pathlib import Path

from cagsr.data.config import DataConfig
from cagsr.data.schema import MathProblem, Record
from cagsr.data.sources import load_records
from cagsr.reproduce.plan import ReproducePlan


@dataclass
class Splits:
    pool: Path
    """JSON Lines file of the training records (SFT, reward models, RL, consistency classifier)."""
    check: list[Record]
    """Stopping items of the RL rows."""
    sets: dict[str, list[Record]]
    """Held-out set name -> its items; the first is the table's main set."""


def write_jsonl(records: list[Record], path: Path) -> None:
    path.write_text("".join(json.dumps(dataclasses.asdict(r), ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")


def _read(path: Path) -> list[Record]:
    return load_records(DataConfig(path=str(path)))


def assert_disjoint(named: dict[str, list[Record]]) -> None:
    """No record id (and, for math, no question text) in two of the named groups."""
    seen: dict[str, str] = {}
    for name, records in named.items():
        for r in records:
            keys = [f"id:{r.id}"] + ([f"q:{r.question.strip()}"] if isinstance(r, MathProblem) else [])
            for key in keys:
                if seen.setdefault(key, name) != name:
                    raise AssertionError(f"{key[:80]} is in both {seen[key]} and {name}")


def _draw(records: list[Record], table: str, plan: ReproducePlan) -> dict[str, list[Record]]:
    order = list(records)
    random.Random(12_345).shuffle(order)
    n_main, n_check = plan.heldout[table], plan.check_items
    groups = {"heldout": order[:n_main], "check": order[n_main : n_main + n_check]}
    rest = order[n_main + n_check :]
    if table == "cot":
        easy = [r for r in rest if len(r.steps) <= plan.easy_max_steps][: plan.easy_items]
        taken = {r.id for r in easy}
        groups["easy"], rest = easy, [r for r in rest if r.id not in taken]
    groups["pool"] = rest
    if len(groups["heldout"]) < n_main or not rest:
        raise ValueError(f"{table}: {len(records)} records are too few for {n_main} held-out items and a pool")
    return groups


def make_splits(table: str, plan: ReproducePlan, folder: Path) -> Splits:
    """Draw (or reread) the splits of `table` under folder and assert they are disjoint."""
    folder.mkdir(parents=True, exist_ok=True)
    # A plan without a stopping rule has no stopping items (and the small plans no easy set): no empty files.
    names = ["pool", *(["check"] if plan.check_items else []), "heldout",
             *(["easy"] if table == "cot" and plan.easy_items else [])]
    if not all((folder / f"{n}.jsonl").exists() for n in names):
        groups = _draw(load_records(DataConfig(**plan.source(table))), table, plan)
        for name in names:
            write_jsonl(groups[name], folder / f"{name}.jsonl")
    groups = {name: _read(folder / f"{name}.jsonl") for name in names}  # what the jobs will really read
    assert_disjoint(groups)
    main = "star" if table == "dialogue" else "gsm8k"
    if plan.source(table)["path"].startswith("generated:"):
        main = "generated"
    sets = {main: groups["heldout"], **({"easy": groups["easy"]} if groups.get("easy") else {})}
    (folder / "splits.json").write_text(json.dumps({n: len(g) for n, g in groups.items()}, indent=1))
    return Splits(folder / "pool.jsonl", groups.get("check", []), sets)
