"""Train an RL row until its own held-out reward is clearly above the supervised model's.

Built on the public trainer API only: each chunk is `Trainer(job, resume=run)` with ppo.iterations
raised by `stop.check_every`, so an interrupted row resumes from its last checkpoint. After each
chunk the row's final model answers the stopping items; `check_scores` scores the replies with the
row's own reward (the attention reward under the row's reward config, or the row's reward model),
one value per item, and the paired bootstrap of (row - supervised) over the items decides.

    record = train_until_risen(job_for, folder, scorer, baseline, plan.stop)
    record["reason"]  # 'risen' (lower bound > margin) or 'cap' (max_iterations reached)
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

from cagsr.evaluation.analysis.paired import align, item_means, paired_bootstrap
from cagsr.ppo.config import TrainJob
from cagsr.reproduce.claims import finite
from cagsr.reproduce.plan import StopRule
from cagsr.utils.logging import read_metrics

Scores = dict[str, float]


def job_reward(job: TrainJob, loaded):
    """The reward definition `job` trains on (what its run writes to reward.yaml): its settings, salience fitted
    on the training records the trainer splits off its data."""
    from cagsr.data.sources import corpus_texts, load_records, split_records
    from cagsr.reward.definition import define_reward

    train, _ = split_records(load_records(job.data), job.data.val_fraction, job.data.seed)
    return define_reward(job.reward, job.salience, job.attention, max_steps=job.rollout.max_steps,
                         corpus=corpus_texts(train), encoder_decoder=loaded.is_encoder_decoder)


QUALITY = "quality"
"""The positive control's reward (cagsr.reward.registry.REWARDS): checked with the evaluation's own metrics."""


def quality_score(row: dict) -> float:
    """What the quality reward trains on, from an evaluation row: a dialogue reply's coherence, a chain of
    thought's mean of step correctness and accuracy.

    >>> quality_score({"coherence": 0.4}), quality_score({"accuracy": 1.0, "step_correctness": 0.5})
    (0.4, 0.75)
    """
    if "coherence" in row:
        return row["coherence"]
    return 0.5 * (row["accuracy"] + row["step_correctness"])


def check_scores(model_path: Path, items: list, settings, job: TrainJob, reward_model: Path | None) -> Scores:
    """Per-item mean reward of the model's greedy replies to `items` (dialogue: over its turns), under the
    reward the row's `job` trains on (or its reward model), read from the reference model's pass when the job
    reads its reward there (reward.reader reference)."""
    from cagsr.evaluation.metrics.embedding import Embedder
    from cagsr.evaluation.runner import EvalSettings, evaluate
    from cagsr.models.registry import load_model

    loaded = load_model(str(model_path))
    own = reward_model is None and job.reward.kind != QUALITY
    reader = load_model(job.model.name) if own and job.reward.reader == "reference" else None
    report = evaluate(loaded, items, EvalSettings(**{**settings, "attention_reward": own}),
                      embedder=Embedder() if job.reward.kind == QUALITY else None,
                      reward=job_reward(job, loaded) if own else None, reward_reader=reader, reward_job=job)
    if job.reward.kind == QUALITY:
        return item_means([{**r, QUALITY: quality_score(r)} for r in report.rows], QUALITY)
    if own:  # the trained total when the reward is more than the attention reward
        return item_means(report.rows, "turn_reward" if "turn_reward" in report.rows[0] else "reward")
    from cagsr.data.schema import Dialogue
    from cagsr.evaluation.reward_models.model import RewardModel

    model = RewardModel.load(reward_model)
    records = {r.id: r for r in items}

    def context(row):
        record = records[row["episode"]]
        return record.turns[: row["turn"]] if isinstance(record, Dialogue) else record.question

    scores = model.score([context(r) for r in report.rows], [r["generated"] for r in report.rows])
    return item_means([{**r, "rm": s} for r, s in zip(report.rows, scores, strict=True)], "rm")


def decide(entry: dict, rule: StopRule) -> str | None:
    """'risen', 'cap' or None (train on) for one check {'iteration', 'low', ...}.

    >>> rule = StopRule(check_every=5, min_iterations=5, max_iterations=10)
    >>> decide({"iteration": 5, "low": 0.01}, rule), decide({"iteration": 5, "low": -0.01}, rule)
    ('risen', None)
    >>> decide({"iteration": 10, "low": -0.01}, rule)
    'cap'
    """
    if entry["iteration"] >= rule.min_iterations and entry["low"] > rule.margin:
        return "risen"
    if entry["iteration"] >= rule.max_iterations:
        return "cap"
    return None


def mean_kl(run: Path, since: int, key: str = "policy/kl_ref") -> float:
    """Mean KL to the reference over the run's iterations after `since` (NaN when none logged it).
    `key`: policy/kl_ref (k1, the sampled log-ratio: can dip below zero) or policy/kl_ref_k3 (never negative)."""
    values = [m[key] for m in read_metrics(run) if m.get("step", 0) > since and key in m]
    return sum(values) / len(values) if values else math.nan


def kl_record(run: Path, since: int) -> dict[str, float]:
    """Both KL estimates of the iterations after `since`, as stop records keep them."""
    return {"kl_ref": mean_kl(run, since), "kl_ref_k3": mean_kl(run, since, "policy/kl_ref_k3")}


def kl_text(stops: list[dict]) -> str | None:
    """The KL of a row's stop records, averaged over seeds: k1 (the estimate every run logged), and k3 beside
    it when every seed logged k3; None when no seed logged KL.

    >>> kl_text([{"kl_ref": -0.01, "kl_ref_k3": 0.03}, {"kl_ref": 0.03, "kl_ref_k3": 0.05}])
    'KL 0.0100, k3 0.0400'
    >>> kl_text([{"kl_ref": 0.02}, {"kl_ref": 0.04, "kl_ref_k3": 0.05}]), kl_text([{}])
    ('KL 0.0300', None)
    """
    k1 = [s["kl_ref"] for s in stops if finite(s.get("kl_ref"))]
    k3 = [s.get("kl_ref_k3") for s in stops]
    if not k1:
        return None
    return f"KL {sum(k1) / len(k1):.4f}" + (f", k3 {sum(k3) / len(k3):.4f}" if all(map(finite, k3)) else "")


def _read_checks(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def train_until_risen(job_for: Callable[[int], TrainJob], folder: Path, scorer: Callable[[Path], Scores],
                      baseline: Scores, rule: StopRule) -> dict:
    """Chunks of training and checks until `decide` stops; writes folder/stopping.jsonl (one line per
    check) and folder/stop.json (the decision); the run (checkpoints, metrics, model) is folder/run."""
    from cagsr.ppo.checkpoint import list_checkpoints
    from cagsr.ppo.trainer import Trainer

    run, log = folder / "run", folder / "stopping.jsonl"
    checks = _read_checks(log)
    while True:
        done = checks[-1]["iteration"] if checks else 0
        target = min(done + rule.check_every, rule.max_iterations)
        has_checkpoint = run.exists() and bool(list_checkpoints(run / "checkpoints"))
        if not has_checkpoint:
            shutil.rmtree(run, ignore_errors=True)
            checks = []
            log.unlink(missing_ok=True)
            done, target = 0, min(rule.check_every, rule.max_iterations)
        Trainer(job_for(target), resume=run if has_checkpoint else None).train()
        interval = paired_bootstrap(align(scorer(run / "model"), baseline)[1], rule.n_boot, rule.level)
        entry = {"iteration": target, "mean": interval.mean, "low": interval.low, "high": interval.high,
                 "n": interval.n, **kl_record(run, done)}
        checks.append(entry)
        with log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        if reason := decide(entry, rule):
            record = {"reason": reason, "iterations": target, "interval": entry,
                      "kl_ref": entry["kl_ref"], "kl_ref_k3": entry["kl_ref_k3"],
                      "checks": checks, "rule": {k: getattr(rule, k) for k in rule.__dataclass_fields__}}
            (folder / "stop.json").write_text(json.dumps(record, indent=1))
            shutil.rmtree(run / "checkpoints", ignore_errors=True)  # only the final model is read again
            return record
