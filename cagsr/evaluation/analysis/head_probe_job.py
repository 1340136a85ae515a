"""The `cagsr calibrate --mode head_probe` job: fit a ridge probe over per-head attention features to rated
replies (the CLI, cli/calibrate.py, parses and prints; reproduce fits its head-probe row with it).

    preset, folder, summary = run_head_probe(job)       # job: CalibrateJob with mode head_probe

    cagsr calibrate --mode head_probe --model smollm2-135m --data ../shared/data/ratings/usr_personachat.jsonl \
        --probe.exclude_models "Original Ground Truth" --attention.heads 18.6,17.3,20.6 \
        --base-preset dialogue --preset-out presets/usr-head-probe.yaml --output-dir runs/probe-usr
    cagsr calibrate --mode head_probe --probe.scores_file runs/probe-usr/features.jsonl \
        --probe.transfer runs/probe-fed/features.jsonl ...        # reuse both sets' features, add transfer

Writes features.jsonl (+ features-heads.json), head-probe.json / .md and the preset (reward.kind head_probe
with the probe inline) that `cagsr train --config` trains with. attention.heads names the heads of the
retrieval-head version of the paper's reward that is measured next to the probe (label-free).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from cagsr.attention.heads import format_heads, parse_heads
from cagsr.config import load_yaml
from cagsr.errors import ConfigError


def _read_features(path: str) -> tuple[list[dict], tuple]:
    file = Path(path)
    meta = file.parent / "features-heads.json"
    if not file.is_file() or not meta.is_file():
        raise ConfigError(f"probe: {file} (and features-heads.json beside it) do not exist")
    rows = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows, parse_heads(json.loads(meta.read_text())["heads"])


def score_features(job) -> tuple[list[dict], tuple]:
    """Load the model and the rated replies, score every head's features in one pass per batch."""
    from cagsr.evaluation.analysis.head_features import read_rated_replies, score_head_features
    from cagsr.models.registry import load_model
    from cagsr.salience.masks import Salience

    replies = read_rated_replies(Path(job.data.path), job.probe.aspect, job.probe.exclude_models)
    if job.data.limit is not None:
        replies = replies[: job.data.limit]
    loaded = load_model(job.model)
    texts = [u.text for r in replies for u in r.dialogue.turns]
    salience = Salience.fit(texts, job.salience.sources, job.salience.idf_quantile, job.salience.keywords,
                            job.salience.entity_detector)
    return score_head_features(replies, loaded, salience, job.attention, job.reward, parse_heads(job.attention.heads),
                               job.max_context, progress=job.run.progress)


def preset_text(job, result: dict) -> str:
    base = load_yaml(job.base_preset)
    base.setdefault("model", {})["name"] = job.model.name
    base["reward"] = {**base.get("reward", {}), "kind": "head_probe", "head_probe": result["probe"]}
    p = result["preset_fit"]
    held = p["heldout"]
    header = [f"# {job.base_preset} with the head-probe reward fitted by `cagsr calibrate --mode head_probe` on",
              f"# {job.data.path} ({job.probe.aspect}; {p['fit_replies']} replies fitted, ridge alpha {p['alpha']:g};",
              f"# held-out Spearman {held['rho']:+.3f} [{held['low']:+.3f}, {held['high']:+.3f}], model {job.model.name})."]
    # Lists of numbers in flow style: a 270-head probe stays a few lines, not one number a line.
    return "\n".join(header) + "\n" + yaml.safe_dump(base, sort_keys=False, width=10**9, default_flow_style=None)


def run_head_probe(job) -> tuple[Path, Path, dict]:
    """Score (or read saved features), fit, write features, the preset and the report: (preset, folder,
    summary without the probe's weights)."""
    from cagsr.evaluation.analysis.head_calibration import head_probe_report, report_markdown
    from cagsr.utils.run import prepare_run_dir

    fit = job.probe
    rows, heads = _read_features(fit.scores_file) if fit.scores_file else score_features(job)
    other = None
    if fit.transfer:
        other, other_heads = _read_features(fit.transfer)
        if other_heads != heads:
            raise ConfigError("probe.transfer: its features were scored with other heads (another model?)")
    try:
        result = head_probe_report(rows, heads, fit, job.run.seed, job.boot, other)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    folder = prepare_run_dir(job.run.output_dir, "calibrate", job)
    with (folder / "features.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    (folder / "features-heads.json").write_text(json.dumps({"heads": format_heads(heads)}))
    preset = Path(job.preset_out) if job.preset_out else folder / "head-probe.yaml"
    preset.parent.mkdir(parents=True, exist_ok=True)
    preset.write_text(preset_text(job, result), encoding="utf-8")
    summary = {k: v for k, v in result.items() if k != "probe"}
    (folder / "head-probe.json").write_text(json.dumps(summary, indent=1, default=str))
    title = f"Head probe: {job.model.name} on {job.data.path} ({fit.aspect})"
    (folder / "head-probe.md").write_text(report_markdown(title, result), encoding="utf-8")
    return preset, folder, summary
