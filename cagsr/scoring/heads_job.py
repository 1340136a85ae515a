"""The `cagsr heads` job: retrieval-head scores of a model from a synthetic copy task (scoring/retrieval.py), the
top heads, and optionally a preset whose coverage and focus read only them; the CLI (cli/heads.py) prints.

    folder, result = run_heads(HeadsJob(top=8))
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cagsr.config import check_range, load_yaml
from cagsr.models.config import ModelConfig
from cagsr.utils.run import RunConfig


@dataclass
class CopyTaskConfig:
    """The synthetic copy task (cagsr.scoring.retrieval)."""

    examples: int = 16
    """Copy examples (each one history and one copied span)."""
    history_tokens: int = 200
    """Distinct word tokens per history."""
    copy_tokens: int = 24
    """Tokens of the copied span (the first one is not scored: it gives the span away)."""

    def __post_init__(self) -> None:
        check_range("examples", self.examples, low=1)
        check_range("history_tokens", self.history_tokens, low=2)
        check_range("copy_tokens", self.copy_tokens, low=2)


@dataclass
class HeadsJob:
    """`cagsr heads`: score every attention head on a synthetic copy task; write the top heads."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """The model whose heads are scored."""
    task: CopyTaskConfig = field(default_factory=CopyTaskConfig)
    """The copy task."""
    run: RunConfig = field(default_factory=RunConfig)
    """Output folder, stdout file, seed of the task, threads."""
    top: int = field(default=8, metadata={"flag": "--top"})
    """How many of the best-scoring heads go into attention.heads."""
    base_preset: str = field(default="dialogue", metadata={"flag": "--base-preset"})
    """Preset (shipped name or YAML path) that --preset-out extends with attention.heads."""
    preset_out: str | None = field(default=None, metadata={"flag": "--preset-out"})
    """Write the base preset with attention.heads set to the top heads here."""

    def __post_init__(self) -> None:
        check_range("top", self.top, low=1)


def run_heads(job: HeadsJob) -> tuple[Path, dict]:
    """Score every head, write retrieval-heads.json (and the preset with --preset-out): (folder, result)."""
    from cagsr.attention.heads import format_heads
    from cagsr.models.registry import load_model
    from cagsr.scoring.retrieval import copy_task, retrieval_scores, top_heads
    from cagsr.utils.run import prepare_run_dir

    loaded = load_model(job.model)
    task = copy_task(loaded.tokenizer, examples=job.task.examples, history_tokens=job.task.history_tokens,
                     copy_tokens=job.task.copy_tokens, seed=job.run.seed)
    scores, heads, accuracy = retrieval_scores(loaded.model, task)
    best = format_heads(top_heads(scores, heads, job.top))
    folder = prepare_run_dir(job.run.output_dir, "heads", job)
    result = {"model": job.model.name, "heads": best, "copy_accuracy": accuracy,
              "scores": {format_heads([h]): round(float(s), 4) for h, s in zip(heads, scores, strict=True)},
              "top_scores": sorted((float(s) for s in scores), reverse=True)[: job.top]}
    (folder / "retrieval-heads.json").write_text(json.dumps({k: v for k, v in result.items() if k != "top_scores"},
                                                            indent=1))
    if job.preset_out:
        base = load_yaml(job.base_preset)
        base.setdefault("model", {})["name"] = job.model.name
        base["attention"] = {**base.get("attention", {}), "heads": best}
        header = f"# {job.base_preset} with coverage and focus read from the top {job.top} retrieval heads (`cagsr heads`)\n"
        Path(job.preset_out).parent.mkdir(parents=True, exist_ok=True)
        Path(job.preset_out).write_text(header + yaml.safe_dump(base, sort_keys=False), encoding="utf-8")
    return folder, result
