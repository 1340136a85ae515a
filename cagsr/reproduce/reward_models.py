"""The reward models of the baselines: synthetic preferences (both tables) and human labels (dialogue)."""

from __future__ import annotations

import json
from pathlib import Path

from cagsr.reproduce.tables import SHARED


def ensure_reward_models(table: str, train_records: list, folder: Path) -> dict[str, Path]:
    """Train once (or reuse): folder/synthetic always, folder/human when the human-labelled file exists."""
    from cagsr.data.taskmaster import read_taskmaster_rewards
    from cagsr.evaluation.reward_models.model import train_bradley_terry, train_pointwise
    from cagsr.evaluation.reward_models.preferences import synthetic_preference_pairs

    out: dict[str, Path] = {}
    synthetic = folder / "synthetic"
    if not (synthetic / "reward_model.json").exists():
        model, report = train_bradley_terry(synthetic_preference_pairs(train_records[:300], seed=0))
        model.save(synthetic)
        (synthetic / "report.json").write_text(json.dumps(report, indent=1))
    out["synthetic"] = synthetic
    human_file = SHARED / "taskmaster4_reward.jsonl"
    if table == "dialogue" and human_file.exists():
        human = folder / "human"
        if not (human / "reward_model.json").exists():
            model, report = train_pointwise(read_taskmaster_rewards(human_file))
            model.save(human)
            (human / "report.json").write_text(json.dumps(report, indent=1))
        out["human"] = human
    return out
