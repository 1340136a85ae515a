"""The `cagsr eval` job (also cagsr.api.evaluate): generate on a data source's validation split, compute every
metric that applies, and (for the command) write the run folder.

    report = run_eval(job)                          # EvalReport: summary and one row per turn or solution
    folder, table = write_eval_folder(job, report)  # eval.json, eval.md, validity/ in the run folder
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from cagsr.data.config import DataConfig
from cagsr.evaluation.runner import EvalSettings
from cagsr.models.config import ModelConfig
from cagsr.utils.run import RunConfig


@dataclass
class EvalJob:
    """`cagsr eval`: evaluate a model or a cagsr run folder on the validation split of a data source."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """Model or run folder to evaluate."""
    data: DataConfig = field(default_factory=DataConfig)
    """Data; its validation split (data.val_fraction, data.seed) is evaluated."""
    eval: EvalSettings = field(default_factory=EvalSettings)
    """Generation and metric settings."""
    run: RunConfig = field(default_factory=RunConfig)
    """Output, seed."""
    max_records: int = 24
    """Evaluate at most this many records of the split."""
    classifier_dialogues: int = 400
    """Training dialogues for the consistency classifier (trained once per corpus, then reused)."""
    reward_from: Literal["run", "settings"] = field(default="run", metadata={"flag": "--reward-from"})
    """Which attention reward (and chain-of-thought step split) scores the replies. run: the reward saved with
    --model when it is a cagsr run folder (RUN/reward.yaml); settings: the paper's default reward, salience
    fitted on the evaluated records (also what a model without a saved reward gets)."""


def run_eval(job: EvalJob):
    from cagsr.data.schema import Dialogue
    from cagsr.data.sources import corpus_texts, load_records, record_kind, split_records
    from cagsr.evaluation.metrics.consistency import ensure_consistency_classifier
    from cagsr.evaluation.metrics.embedding import Embedder
    from cagsr.evaluation.runner import evaluate
    from cagsr.models.checks import check_chat_template
    from cagsr.models.registry import load_model
    from cagsr.reward.definition import command_definition
    from cagsr.rollout.config import RolloutConfig

    records = load_records(job.data)
    train, val = split_records(records, job.data.val_fraction, job.data.seed)
    split = (val or train)[: job.max_records]
    consistency = None
    if record_kind(records) == "dialogue":
        name = Path(job.data.path).stem.replace(":", "-")
        consistency = ensure_consistency_classifier(train[: job.classifier_dialogues], name=name, seed=job.data.seed)
    loaded = load_model(job.model)
    # The model must format the data's prompts (and keep their system prompt) before hours of generation.
    check_chat_template(loaded, next((r.system_prompt for r in split if isinstance(r, Dialogue) and r.system_prompt), ""))
    definition = command_definition(job, loaded, lambda: corpus_texts(split), RolloutConfig().max_steps)
    report = evaluate(loaded, split, job.eval, consistency=consistency, embedder=Embedder(), reward=definition)
    if consistency is not None:
        report.summary["classifier_val_accuracy"] = consistency.report.get("val_accuracy", float("nan"))
    report.summary["model"] = job.model.name
    return report


def write_eval_folder(job: EvalJob, report) -> tuple[Path, str]:
    """The run folder of `cagsr eval` (eval.json, eval.md, the reward-validity report); returns it and the
    summary table (Markdown)."""
    from cagsr.evaluation.analysis.tables_md import DIALOGUE_COLUMNS, MATH_COLUMNS, summary_table
    from cagsr.evaluation.analysis.validity_report import write_validity_report
    from cagsr.utils.run import prepare_run_dir

    folder = prepare_run_dir(job.run.output_dir, "eval", job)
    (folder / "eval.json").write_text(json.dumps({"summary": report.summary, "settings": asdict(job.eval),
                                                  "rows": report.rows}, indent=1))
    columns = MATH_COLUMNS if report.summary["kind"] == "math" else DIALOGUE_COLUMNS
    table = summary_table({job.model.name: report.summary}, columns)
    (folder / "eval.md").write_text(f"# cagsr eval\n\nengine: {report.summary['engine']}\n\n{table}\n")
    write_validity_report(report.rows, folder / "validity", title=f"Reward validity: {job.model.name} on {job.data.path}")
    return folder, table
