"""The medium design without training: splits, the stopping loop (a stand-in trainer), claims, verdicts."""

import json
import random
import subprocess
import sys
import time

import pytest

from cagsr.data.generate import generate_math
from cagsr.evaluation.analysis.paired import item_means
from cagsr.reproduce import stopping
from cagsr.reproduce.claims import MULTI, NO_RL, SINGLE, by_position, claims_for, judge, position_claims
from cagsr.reproduce.heldout import assert_disjoint, make_splits
from cagsr.reproduce.plan import PLANS, StopRule
from cagsr.reproduce.tables import CONTENT_ROW, COT_ROWS, DIALOGUE_ROWS


def test_splits_are_disjoint_and_reread(tmp_path):
    plan = PLANS["tiny-medium"]
    splits = make_splits("cot", plan, tmp_path)
    assert list(splits.sets) == ["generated", "easy"]
    assert len(splits.sets["generated"]) == plan.heldout["cot"] and len(splits.sets["easy"]) == plan.easy_items
    assert all(len(p.steps) <= plan.easy_max_steps for p in splits.sets["easy"])
    pool = (tmp_path / "pool.jsonl").read_text().splitlines()
    held = {p.id for s in splits.sets.values() for p in s} | {p.id for p in splits.check}
    assert pool and not held & {json.loads(line)["id"] for line in pool}
    again = make_splits("cot", plan, tmp_path)  # a resumed run reads the same files
    assert [p.id for p in again.sets["generated"]] == [p.id for p in splits.sets["generated"]]


def test_overlap_is_caught_by_id_and_question():
    a, b = generate_math(3), generate_math(3, seed=1)
    assert_disjoint({"pool": a[:2], "heldout": a[2:]})
    with pytest.raises(AssertionError, match="both pool and heldout"):
        assert_disjoint({"pool": a, "heldout": a[2:]})
    renamed = [type(b[0])(id="other", question=a[0].question, steps=a[0].steps, answer=a[0].answer)]
    with pytest.raises(AssertionError, match="q:"):
        assert_disjoint({"pool": a, "heldout": renamed})


class FakeTrainer:
    """Stands in for cagsr.ppo.trainer.Trainer: 'trains' to job.iterations, leaves a checkpoint and a model."""

    calls: list = []

    def __init__(self, job, resume=None):
        self.job, self.resume = job, resume

    def train(self):
        run = self.job.run
        FakeTrainer.calls.append((self.job.iterations, self.resume is not None))
        (run / "checkpoints" / f"step-{self.job.iterations:06d}").mkdir(parents=True, exist_ok=True)
        (run / "model").mkdir(exist_ok=True)
        (run / "model" / "iterations").write_text(str(self.job.iterations))
        (run / "metrics.jsonl").open("a").write(json.dumps({"step": self.job.iterations, "policy/kl_ref": 0.01,
                                                    "policy/kl_ref_k3": 0.02}) + "\n")


class Job:
    def __init__(self, iterations, run):
        self.iterations, self.run = iterations, run


def test_training_stops_once_the_reward_has_risen_and_resumes(tmp_path, monkeypatch):
    import cagsr.ppo.trainer

    monkeypatch.setattr(cagsr.ppo.trainer, "Trainer", FakeTrainer)
    FakeTrainer.calls = []
    baseline = {f"i{k}": 0.0 for k in range(6)}
    rise_at = 6  # the reward is flat until 6 iterations, then +0.1 (+/- 0.01) on every item

    def scorer(model):
        it = int((model / "iterations").read_text())
        return {i: (0.1 + 0.01 * (k % 2) if it >= rise_at else 0.01 * (-1) ** k) for k, i in enumerate(baseline)}

    rule = StopRule(check_every=2, min_iterations=2, max_iterations=10, n_boot=200)
    record = stopping.train_until_risen(lambda n: Job(n, tmp_path / "run"), tmp_path, scorer, baseline, rule)
    assert record["reason"] == "risen" and record["iterations"] == 6
    assert [c["iteration"] for c in record["checks"]] == [2, 4, 6]
    assert record["checks"][-1]["low"] >= 0.1 and record["kl_ref"] == pytest.approx(0.01)
    assert record["kl_ref_k3"] == pytest.approx(0.02)  # both estimates, over the last chunk
    assert FakeTrainer.calls == [(2, False), (4, True), (6, True)]  # chunks resume the same run
    assert not (tmp_path / "run" / "checkpoints").exists()
    # interrupted after the check at 4: the next start resumes at 4 and trains to 6
    lines = (tmp_path / "stopping.jsonl").read_text().splitlines()[:2]
    (tmp_path / "stopping.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "run" / "checkpoints" / "step-000004").mkdir(parents=True)
    FakeTrainer.calls = []
    again = stopping.train_until_risen(lambda n: Job(n, tmp_path / "run"), tmp_path, scorer, baseline, rule)
    assert FakeTrainer.calls == [(6, True)] and again["iterations"] == 6


def test_a_reward_that_never_rises_stops_at_the_cap(tmp_path, monkeypatch):
    import cagsr.ppo.trainer

    monkeypatch.setattr(cagsr.ppo.trainer, "Trainer", FakeTrainer)
    FakeTrainer.calls = []
    baseline = {"a": 0.0, "b": 0.0}
    rule = StopRule(check_every=3, min_iterations=3, max_iterations=5, n_boot=100)
    record = stopping.train_until_risen(lambda n: Job(n, tmp_path / "run"), tmp_path,
                                        lambda m: {"a": 0.1, "b": -0.1}, baseline, rule)
    assert record["reason"] == "cap" and [c["iteration"] for c in record["checks"]] == [3, 5]


def test_claims_cover_the_papers_statements():
    present = {r.name for r in DIALOGUE_ROWS}
    claims = [c for c in claims_for("dialogue", ["star"], present) if c.kind == "claim"]
    assert {(c.a, c.b, c.metric, c.direction, c.paper) for c in claims} == {
        (MULTI, SINGLE, "coherence", 1, 0.02), (MULTI, SINGLE, "consistency", 1, 0.03),
        ("Ablation: no history coverage", MULTI, "coherence", -1, -0.01),
        ("Ablation: no entropy clamping", MULTI, "consistency", -1, -0.02)}
    cot = claims_for("cot", ["gsm8k", "easy"], {r.name for r in COT_ROWS})
    assert {(c.metric, c.set) for c in cot if c.kind == "claim" and c.b == SINGLE} == {
        (m, s) for m in ("accuracy", "step_correctness") for s in ("gsm8k", "easy")}
    assert any(c.a == CONTENT_ROW and c.kind == "question" for c in cot)
    assert not claims_for("cot", ["gsm8k"], {NO_RL})  # nothing to compare


def test_judge_hand_made_items():
    items = {
        (MULTI, "star", "coherence"): [{"d1": 0.6, "d2": 0.7}, {"d1": 0.6, "d2": 0.7}],
        (SINGLE, "star", "coherence"): [{"d1": 0.5, "d2": 0.6}, {"d1": 0.5, "d2": 0.6}],
        ("Ablation: no history coverage", "star", "coherence"): [{"d1": 0.7, "d2": 0.8}],
    }
    present = {MULTI, SINGLE, "Ablation: no history coverage"}
    results = {(r["a"], r["metric"]): r for r in judge(claims_for("dialogue", ["star"], present), items, 500)}
    multi = results[(MULTI, "coherence")]
    assert multi["mean"] == pytest.approx(0.1) and multi["low"] == pytest.approx(0.1)
    assert multi["verdict"] == "holds" and multi["paper_inside"] is False  # +0.02 lies outside [0.1, 0.1]
    assert multi["seed_diffs"] == pytest.approx([0.1, 0.1]) and multi["spread"] == pytest.approx(0.0)
    ablation = results[("Ablation: no history coverage", "coherence")]
    assert ablation["verdict"] == "reversed" and ablation["mean"] == pytest.approx(0.1)  # it did not cost
    assert (MULTI, "consistency") not in results  # no data for that metric: no line


def test_an_interval_does_not_move_when_other_claims_are_added():
    rng = random.Random(0)
    items = {(row, "star", "coherence"): [{f"d{i}": rng.random() for i in range(30)}] for row in (MULTI, NO_RL, SINGLE)}
    alone = judge(claims_for("dialogue", ["star"], {MULTI, NO_RL}), items, 300)
    more = judge(claims_for("dialogue", ["star"], {MULTI, NO_RL, SINGLE}), items, 300)
    pick = [r for r in more if (r["a"], r["b"], r["metric"]) == (MULTI, NO_RL, "coherence")]
    assert len(alone) == 1 and len(pick) == 1 and len(more) > 1
    assert (pick[0]["low"], pick[0]["high"]) == (alone[0]["low"], alone[0]["high"])


def test_position_comparisons_separate_early_from_late_turns():
    def rows(late_gain: float) -> list[dict]:  # 3 dialogues of 7 agent turns; coherence 0.5, + gain from turn 6
        return [{"episode": f"d{d}", "turn": 2 * k + 1, "coherence": 0.5 + (late_gain if k >= 5 else 0.0)}
                for d in range(3) for k in range(7)]

    items = {}
    for system, gain in ((MULTI, 0.2), (NO_RL, 0.0)):
        for label, group in by_position(rows(gain)).items():
            items[(system, f"star@{label}", "coherence")] = [item_means(group, "coherence")]
    claims = position_claims("dialogue", "star", {MULTI, NO_RL})
    assert {c.set for c in claims} == {"star@1-2", "star@3-5", "star@6+"} and all(c.b == NO_RL for c in claims)
    results = {r["set"]: r for r in judge(claims, items, 200)}
    assert results["star@1-2"]["mean"] == pytest.approx(0.0) and results["star@1-2"]["verdict"] == "not shown"
    assert results["star@6+"]["mean"] == pytest.approx(0.2) and results["star@6+"]["verdict"] == "holds"
    assert results["star@6+"]["n"] == 3


@pytest.mark.parametrize("scale", ["medium", "medium-v2", "tiny-medium"])
def test_every_plan_section_is_a_valid_config(scale):
    from cagsr.evaluation.runner import EvalSettings
    from cagsr.reproduce.results import row_problem
    from cagsr.sft.config import SFTConfig

    plan = PLANS[scale]
    SFTConfig(**plan.sft)
    EvalSettings(**plan.eval)
    EvalSettings(**plan.check_eval)
    for rows in (DIALOGUE_ROWS, COT_ROWS):
        for row in rows:
            problem = row_problem(row, {**plan.ppo, "ppo.iterations": 5}, {"path": "pool.jsonl"}, plan.model)
            assert problem is None or (row.name == CONTENT_ROW and "history_tokens" in problem), problem
    assert plan.seeds(core=True, rl=False) == min(plan.seeds_core, plan.sft_seeds)


def test_a_saved_evaluation_is_redone_when_the_plan_evaluates_otherwise(tmp_path):
    import dataclasses

    from cagsr.data.schema import Dialogue, Utterance
    from cagsr.evaluation.runner import EvalSettings
    from cagsr.reproduce.pipeline import _saved_evaluation

    plan = PLANS["tiny-medium"]
    dialogues = [Dialogue("d", [Utterance("user", "hi"), Utterance("agent", "hello")])]
    problems = generate_math(1, seed=0)
    for name, items in (("star", dialogues), ("gsm8k", problems)):
        kind = "math" if name == "gsm8k" else "dialogue"
        saved = {"summary": {"n": 1}, "rows": [], "settings": EvalSettings(**plan.eval).applying_to(kind)}
        (tmp_path / f"eval-{name}.json").write_text(json.dumps(saved))
        assert _saved_evaluation(tmp_path, name, items, plan) == saved
    more_turns = dataclasses.replace(plan, eval={**plan.eval, "max_turns": None})
    assert _saved_evaluation(tmp_path, "star", dialogues, more_turns) is None
    assert _saved_evaluation(tmp_path, "gsm8k", problems, more_turns) is not None  # math has no turns
    longer = dataclasses.replace(plan, eval={**plan.eval, "cot_max_new_tokens": 99})
    assert _saved_evaluation(tmp_path, "gsm8k", problems, longer) is None
    (tmp_path / "eval-star.json").write_text(json.dumps({"summary": {}, "rows": []}))  # made before settings
    assert _saved_evaluation(tmp_path, "star", dialogues, plan) is None
    assert _saved_evaluation(tmp_path, "none", dialogues, plan) is None


def test_a_row_seeds_seconds_add_work_not_reloads(tmp_path):
    from cagsr.reproduce.seconds import counted_seconds, saved_seconds

    (tmp_path / "seconds.json").write_text("5.0")
    with counted_seconds(tmp_path, count=False):  # a finished row-seed reloaded: its cost stays as it was
        time.sleep(0.05)
    assert saved_seconds(tmp_path) == 5.0
    with counted_seconds(tmp_path):  # an invocation that worked on it adds its time
        time.sleep(0.2)
    assert 5.2 <= saved_seconds(tmp_path) < 6.0


def test_a_killed_row_seed_keeps_the_seconds_it_had_worked(tmp_path):
    """The total is written while the work runs: a process killed mid-row-seed loses at most one interval."""
    code = ("import time; from pathlib import Path; from cagsr.reproduce.seconds import counted_seconds\n"
            f"with counted_seconds(Path({str(tmp_path)!r}), every=0.05):\n    time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (tmp_path / "seconds.json").exists():
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        proc.kill()
        proc.wait()
    assert 0.3 <= json.loads((tmp_path / "seconds.json").read_text()) < 60


@pytest.mark.parametrize("module", ["cagsr.reproduce.schedule", "cagsr.reproduce.render", "cagsr.reproduce.claims",
                                    "cagsr.reproduce.sources"])
def test_doctests(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_a_one_seed_row_whose_comparison_is_decided_gets_more_seeds():
    from cagsr.reproduce.results import Reproduction
    from cagsr.reproduce.schedule import follow_up
    from cagsr.reproduce.tables import Row

    peers = [Row("up", versus_multi_turn=True), Row("level", versus_multi_turn=True),
             Row("three", seeds=3, versus_multi_turn=True)]
    rep = Reproduction("dialogue", "medium-v2", None, results={n: [{}] for n in (NO_RL, MULTI, "up", "level", "three")})
    base = [{f"d{i}": 0.5 for i in range(20)}]
    items = {(NO_RL, "star", "coherence"): base, (MULTI, "star", "coherence"): base,
             ("up", "star", "coherence"): [{f"d{i}": 0.6 for i in range(20)}, {f"d{i}": 0.5 for i in range(20)}],
             ("level", "star", "coherence"): [{f"d{i}": 0.5 + (0.01 if i % 2 else -0.01) for i in range(20)}],
             ("three", "star", "coherence"): [{f"d{i}": 0.6 for i in range(20)}]}
    plan = PLANS["medium-v2"]
    # seed 0 of "up" is clearly above (its reloaded seed 1 is level and must not change that); "three" has its own
    assert [r.name for r in follow_up(peers, rep, items, plan, ["star"])] == ["up"]
    assert follow_up(peers, rep, items, PLANS["tiny"], ["star"]) == []  # --seeds decides there


def test_controls_plot_draws_the_controls_quality_comparisons_only():
    from cagsr.reproduce.controls import controls_plot
    from cagsr.reproduce.tables import POSITIVE

    line = {"b": NO_RL, "set": "star", "mean": 0.02, "low": 0.01, "high": 0.03, "n": 9, "verdict": "holds"}
    assert controls_plot([{**line, "a": MULTI, "metric": "coherence"}, {**line, "a": POSITIVE, "metric": "reward"}]) is None
    png = controls_plot([{**line, "a": POSITIVE, "metric": "coherence", "label": "positive − No-RL"}])
    assert png is not None and png.startswith(b"\x89PNG")


def test_a_model_trained_again_twice_keeps_both_trainings_seconds(tmp_path, monkeypatch):
    """Weights lost with two machines in turn: the compute line counts both trainings again, not the latest."""
    from types import SimpleNamespace

    from cagsr.reproduce import pipeline, render

    seconds = iter([100.0, 40.0])

    def train(plan, data, folder, seed, ctx):
        (folder / "model").mkdir(parents=True)
        return {"seed": seed, "val_losses": [[0, 2.0]], "seconds": next(seconds)}

    monkeypatch.setattr(pipeline, "_train_sft", train)
    model = tmp_path / "sft" / "seed-0" / "model"
    model.parent.mkdir(parents=True)  # its records (sft.json) are in git
    ctx = SimpleNamespace(sft={0: model}, sft_records={0: {"seconds": 500.0}}, data={})
    plan = SimpleNamespace(sft_seeds=3)
    for _ in range(2):  # the machine is lost after each: the weights go, the records in git stay
        assert pipeline._sft_weights(plan, ctx, seed=3) == model and model.exists()
        model.rmdir()
    again = json.loads((model.parent / "sft-again.json").read_text())
    assert again["seconds"] == 40.0 and again["earlier_seconds"] == 100.0
    rep = SimpleNamespace(out=tmp_path, compute={}, sft=[{"seconds": 500.0, "again": again}], workers=1)
    assert render._write_compute(rep, seconds=1.0)["sft_again_seconds"] == 140.0
