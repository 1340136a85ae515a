"""`cagsr bench` end to end at smoke-test sizes, and the floor arithmetic.

.venv/bin/python -m pytest tests/rollout/test_engines_bench.py
"""

from __future__ import annotations

import json

import pytest

from cagsr.bench import BenchConfig, run
from cagsr.bench.machine import Machine, model_cost
from cagsr.bench.table import BASELINE
from cagsr.bench.workload import bench_model, chat_prompts, user_message

pytestmark = pytest.mark.usefixtures("one_thread")


def test_quick_run_writes_table_and_json(tmp_path):
    cfg = BenchConfig(quick=True, sections=["single", "dialogue"], engines=["baseline", "lean"],
                      output_dir=str(tmp_path))  # fmt: skip
    report = run(cfg)
    data = json.loads((tmp_path / "bench.json").read_text())
    assert (tmp_path / "bench.md").read_text() == report
    systems = {(r["section"], r["system"]) for r in data["rows"]}
    for section in ("single turn", "dialogue"):
        assert {(section, BASELINE), (section, "lean"), (section, "lean + capture"),
                (section, "lean, fused capture")} <= systems  # fmt: skip
    assert all(r["tokens"] == 8 for r in data["rows"]), "every row must generate exactly S tokens"
    assert "floor" in report and "speed-up vs baseline" in report and data["machine"]["copy_gbs"] > 0


def test_prompts_have_exact_length_and_end_token_is_unreachable():
    loaded = bench_model("tiny-llama", "cpu", "float32")
    prompts = chat_prompts(loaded, 3, 40, seed=0)
    assert [len(p) for p in prompts] == [40, 40, 40] and len({tuple(p) for p in prompts}) == 3
    assert loaded.eos_token_id == loaded.model.config.vocab_size - 1
    import random

    assert len(user_message(loaded, 12, random.Random(0))) == 12


def test_floor_formula():
    loaded = bench_model("tiny-llama", "cpu", "float32")
    cost = model_cost(loaded.model)
    machine = Machine(copy_gbs=10.0, read_gbs=20.0, mm_gflops=50.0, onednn_gflops=100.0)
    assert machine.bandwidth == 20e9 and machine.flops == 100e9
    b, n, s = 4, 100, 10
    prefill = 2 * cost.layer_params * b * n + 4 * cost.layers * cost.heads * cost.head_dim * b * n * n / 2
    prefill += 2 * cost.vocab * cost.hidden * b
    step = max(cost.step_bytes / 20e9, 2 * cost.step_params * b / 100e9)
    assert cost.floor(machine, b, 1, n, s) == pytest.approx(prefill / 100e9 + s * step)
    # tied embeddings: the LM head is the only copy of the embedding a decode step reads
    assert cost.step_bytes == 4 * cost.step_params


def test_config_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown"):
        BenchConfig(engines=["fast"])
    with pytest.raises(ValueError, match="batch"):
        BenchConfig(batch=0)
