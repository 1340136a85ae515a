"""What a training job asks of its model, checked right after the model loads and before the run
folder exists (cagsr/models/checks.py holds the checks; this maps a TrainJob's keys onto them)."""

from __future__ import annotations

from cagsr.attention.heads import check_heads, parse_heads
from cagsr.data.schema import Dialogue, Record
from cagsr.models.checks import (
    check_capture_layers,
    check_chat_template,
    check_context,
    model_heads,
    model_layers,
)
from cagsr.models.registry import LoadedModel
from cagsr.ppo.config import TrainJob


def first_system_prompt(records: list[Record]) -> str:
    return next((r.system_prompt for r in records if isinstance(r, Dialogue) and r.system_prompt), "")


def check_train_job(job: TrainJob, loaded: LoadedModel, records: list[Record]) -> None:
    """Capture layers, prompt lengths plus generation budgets, and the chat template, against `loaded`."""
    check_capture_layers(job.attention.last_layers, loaded)
    layers = model_layers(loaded)
    if layers is not None:  # chosen heads (attention.heads, a head probe's) must exist in this model
        check_heads(parse_heads(job.attention.heads), layers, model_heads(loaded))
        check_heads(job.reward.head_probe.head_list, layers, model_heads(loaded), "reward.head_probe.heads")
    math = any(not isinstance(r, Dialogue) for r in records)
    budget = ({"rollout.cot_max_new_tokens": job.rollout.cot_max_new_tokens} if math
              else {"rollout.sampling.max_new_tokens": job.rollout.sampling.max_new_tokens})
    check_context(loaded, {"rollout.max_context": job.rollout.max_context},
                  budget)
    check_chat_template(loaded, first_system_prompt(records))
