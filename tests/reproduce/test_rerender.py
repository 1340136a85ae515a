"""A committed medium table rendered again from its records gives the same rows: the records hold every
evaluation and stop, so nothing may load a model or train (any attempt fails the test)."""

import shutil
from pathlib import Path

import pytest

import cagsr.evaluation.runner as eval_runner
import cagsr.reproduce.pipeline as pipeline
from cagsr.reproduce.context import ReproduceContext
from cagsr.reproduce.heldout import make_splits
from cagsr.reproduce.render import write_outputs

RECORDS = Path(__file__).resolve().parents[2] / "docs" / "results" / "records" / "reproduce-cot-medium-v2"
SOURCE = Path("../shared/data/gsm8k_train.jsonl")  # the records' splits are drawn from it


def records_only(table, plan, out, threads, progress):
    """The context without the models: the saved evaluations, stops and SFT records are all it needs."""
    splits = make_splits(table, plan, out / "data")
    models = {p.name: p for p in (out / "reward_models").iterdir() if p.is_dir()}
    return ReproduceContext(out=out, data={"path": str(splits.pool)}, sets=splits.sets, check=splits.check,
                            embedder=None, consistency=None, reward_models=models, run={"progress": False})


def refuse(*args, **kwargs):
    raise AssertionError("rendering from records tried to train or evaluate")


@pytest.mark.skipif(not SOURCE.exists() or not RECORDS.exists(), reason="needs ../shared/data and the records")
def test_the_cot_medium_v2_table_renders_again_from_its_records(tmp_path, monkeypatch):
    out = tmp_path / "records"
    shutil.copytree(RECORDS, out)
    monkeypatch.setattr(pipeline, "_context", records_only)
    for name in ("_train_sft", "train_until_risen"):
        monkeypatch.setattr(pipeline, name, refuse)
    monkeypatch.setattr(eval_runner, "evaluate", refuse)
    # The records' table was rendered while rows were still running (--render-only lists them as not
    # finished); it renders again from the finished row-seeds alone.
    rep = pipeline.reproduce_table("cot", "medium-v2", out, progress=False, render_only=True)
    write_outputs(rep, None)
    for name in ("table.json", "paired.json"):
        assert (out / name).read_text() == (RECORDS / name).read_text(), name
    assert rows(out / "table.md") == rows(RECORDS / "table.md")  # its compute line names this machine


def rows(table: Path) -> list[str]:
    return [line for line in table.read_text().splitlines() if line.startswith(("|", "- "))]


def test_a_render_trains_no_supervised_model_that_is_missing(tmp_path, monkeypatch):
    """A run stopped before its supervised models finished: the render lists every row as not finished."""
    (tmp_path / "reward_models").mkdir()
    monkeypatch.setattr(pipeline, "_context", records_only)
    for name in ("_train_sft", "train_until_risen"):
        monkeypatch.setattr(pipeline, name, refuse)
    monkeypatch.setattr(eval_runner, "evaluate", refuse)
    rep = pipeline.reproduce_table("cot", "tiny-medium", tmp_path, progress=False, render_only=True)
    assert rep.sft == [] and rep.results == {} and rep.skipped
