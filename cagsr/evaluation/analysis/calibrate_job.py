"""The `cagsr calibrate` job: fit the reward's weights, signs and floor to labelled replies (or to the scores of
`cagsr validity`), measure the fit on held-out dialogues, and write calibration.md / .json and a preset
(`--mode head_probe`, a ridge probe over per-head attention features, is head_probe_job.py).

    preset, folder, result = run_calibrate(job)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from cagsr.attention.config import AttentionConfig
from cagsr.config import check_range, from_dict, load_yaml, upgrade_saved
from cagsr.errors import ConfigError
from cagsr.evaluation.analysis.head_calibration import HeadProbeFit
from cagsr.evaluation.analysis.validity_job import LabelledData, ValidityJob, score_labelled
from cagsr.models.config import ModelConfig
from cagsr.reward.config import RewardConfig
from cagsr.salience.config import SalienceConfig
from cagsr.utils.run import RunConfig


@dataclass
class CalibrateJob:
    """`cagsr calibrate`: fit alpha, beta, gamma and tau0 (and the history-token version) to human labels."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """The model whose attention is read; the preset should train this model."""
    data: LabelledData = field(default_factory=LabelledData)
    """The labelled replies (Taskmaster-4 reward format)."""
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    """Attention capture settings."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """The default reward the calibration is compared with; its kappa and repetition n-gram are kept."""
    salience: SalienceConfig = field(default_factory=SalienceConfig)
    """Salient-token sources (kept by the calibration)."""
    run: RunConfig = field(default_factory=RunConfig)
    """Output folder (calibration.md / .json), stdout file, seed of the split, threads."""
    scores: str | None = field(default=None, metadata={"flag": "--scores"})
    """scores.jsonl written by `cagsr validity` (same model and reward): skips the scoring pass."""
    holdout: float = 0.5
    """Share of the dialogues kept out of the fit and used only to measure it."""
    base_preset: str = field(default="dialogue-star", metadata={"flag": "--base-preset"})
    """Preset (shipped name or YAML path) whose reward section the fitted one replaces."""
    preset_out: str | None = field(default=None, metadata={"flag": "--preset-out"})
    """Where to write the calibrated preset (default: OUTPUT_DIR/calibrated.yaml)."""
    max_context: int = 768
    """Longest history in tokens when scoring."""
    boot: int = 1000
    """Bootstrap resamples of the held-out intervals."""
    mode: Literal["weights", "head_probe"] = field(default="weights", metadata={"flag": "--mode"})
    """weights: fit alpha, beta, gamma and the floor to 0/1 labels; head_probe: fit a ridge probe over per-head
    attention features to a rated-reply file (continuous scores) and write a reward.kind head_probe preset."""
    probe: HeadProbeFit = field(default_factory=HeadProbeFit)
    """Settings of --mode head_probe."""

    def __post_init__(self) -> None:
        check_range("holdout", self.holdout, low=0.05, high=0.95)


def load_scores(job: CalibrateJob) -> list[dict]:
    """The rows of --scores; the model, data and reward they were scored with replace the job's own."""
    path = Path(job.scores or "")
    if not path.is_file():
        raise ConfigError(f"--scores: {path} does not exist")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows or "label" not in rows[0]:
        raise ConfigError(f"--scores: {path} holds no score rows of `cagsr validity`")
    saved = path.parent / "config.yaml"
    if saved.is_file():
        data = yaml.safe_load(saved.read_text(encoding="utf-8"))
        data.get("reward", {}).pop("history_tokens", None)  # both versions were scored: the field is moot
        upgrade_saved(data)  # scores written before the reward keys were renamed
        scored = from_dict(ValidityJob, data)
        job.model, job.data, job.reward, job.salience = scored.model, scored.data, scored.reward, scored.salience
    return rows


NEW_NAMES = {"alpha": "coverage_weight", "beta": "focus_weight", "gamma": "repetition_weight"}
"""The method's names of the fitted weights -> the reward settings they set."""


def preset_text(job: CalibrateJob, result: dict) -> str:
    base = load_yaml(job.base_preset)
    w = result["weights"]
    base["reward"] = {**base.get("reward", {}), "history_tokens": w["history_tokens"], "kappa": job.reward.kappa,
                      **{new: round(w[old], 6) for old, new in NEW_NAMES.items()},
                      "tau0": w["tau0"] if math.isinf(w["tau0"]) else round(w["tau0"], 6)}
    h = result["heldout"]
    header = [f"# {job.base_preset} with the reward calibrated by `cagsr calibrate` on {job.data.path}",
              f"# ({result['fit_replies']} replies fitted, {h['replies']} held out, model {job.model.name}).",
              f"# Held-out AUC: calibrated {h['calibrated']['auc']:.3f}, paper defaults "
              f"{h['default (all)']['auc']:.3f} (all history tokens) / {h['default (content)']['auc']:.3f} (content)."]
    return "\n".join(header) + "\n" + yaml.safe_dump(base, sort_keys=False)


def report_text(job: CalibrateJob, result: dict) -> str:
    from cagsr.evaluation.analysis.human_validity import auc_markdown

    w, h = result["weights"], result["heldout"]
    better = h["calibrated - default (all)"]["low"] > 0 and h["calibrated - default (content)"]["low"] > 0
    lines = [f"# Reward calibration: {job.model.name} on {job.data.path}", "",
             f"Fitted on {result['fit_replies']} replies, measured on {h['replies']} held-out replies "
             f"({h['good']} good, {h['bad']} bad) of other dialogues. Fitted reward: history_tokens "
             f"{w['history_tokens']}, alpha {w['alpha']:+.4f}, beta {w['beta']:+.4f}, gamma {w['gamma']:+.4f}, "
             f"tau0 {w['tau0']:g} (kappa {job.reward.kappa:g}).", "",
             "| reward | held-out AUC [95% CI] |", "|---|---|"]
    for name in ("calibrated", "default (all)", "default (content)", "calibrated - default (all)",
                 "calibrated - default (content)", "default (content) - default (all)"):
        r = h[name]
        lines.append(f"| {name} | {r['auc']:.3f} [{r['low']:.3f}, {r['high']:.3f}] |")
    lines += ["", "The calibrated reward " + ("beats both defaults on held-out replies (the intervals of the "
              "differences exclude 0)." if better else "does not beat both defaults on held-out replies: the "
              "interval of at least one difference includes 0 or lies below it."), "",
              "Cross-validated AUC of each candidate on the fitting side:", "",
              "| history tokens | tau0 | CV AUC |", "|---|---|---|"]
    lines += [f"| {c['history_tokens']} | {c['tau0']:g} | {c['cv_auc']:.3f} |" for c in result["candidates"]]
    lines += ["", "Each component of the default reward on the held-out replies:", "",
              auc_markdown(result["heldout_components"])]
    return "\n".join(lines) + "\n"


def run_calibrate(job: CalibrateJob) -> tuple[Path, Path, dict]:
    """Score (or read --scores), fit, write the preset and the report: (preset path, run folder, result)."""
    from cagsr.evaluation.analysis.calibrate import calibrate
    from cagsr.utils.run import prepare_run_dir

    scores = load_scores(job) if job.scores else score_labelled(job)[0]
    try:
        result = calibrate(scores, job.holdout, job.run.seed, n_boot=job.boot)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    folder = prepare_run_dir(job.run.output_dir, "calibrate", job)
    preset = Path(job.preset_out) if job.preset_out else folder / "calibrated.yaml"
    preset.parent.mkdir(parents=True, exist_ok=True)
    preset.write_text(preset_text(job, result), encoding="utf-8")
    (folder / "calibration.json").write_text(json.dumps(result, indent=1, default=str))
    (folder / "calibration.md").write_text(report_text(job, result), encoding="utf-8")
    return preset, folder, result
