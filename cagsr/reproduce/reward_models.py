"""The reward models of the baselines: synthetic preferences (both tables) and human labels (dialogue); the
head probe of the head-probe row (dialogue), fitted on rated replies with each supervised model."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from cagsr.reproduce.tables import PROBE_FEATURES, RATINGS, SHARED


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


def ensure_head_probe(model: Path, folder: Path, run: dict) -> dict:
    """reward.head_probe of a ridge probe over `model`'s per-head features of RATINGS (`cagsr calibrate --mode
    head_probe`: every head, PROBE_FEATURES, fitted on 150 replies of whole conversations), fitted once into
    `folder` (its preset, features and report stay there)."""
    preset = folder / "head-probe.yaml"
    if not preset.exists():
        from cagsr.config import from_dict
        from cagsr.evaluation.analysis.calibrate_job import CalibrateJob
        from cagsr.evaluation.analysis.head_probe_job import run_head_probe

        job = from_dict(CalibrateJob, {
            "mode": "head_probe", "model": {"name": str(model)}, "data": {"path": str(RATINGS)},
            "base_preset": "dialogue", "probe": {"features": PROBE_FEATURES, "sizes": [150], "repeats": 5},
            "run": {"output_dir": str(folder), "seed": 0, "overwrite": True, **run}})
        run_head_probe(job)
    return yaml.safe_load(preset.read_text(encoding="utf-8"))["reward"]["head_probe"]
