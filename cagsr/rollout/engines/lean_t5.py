"""The lean engine for encoder-decoder models (T5): one encoder pass, cross-attention K/V cached once.

    .venv/bin/python -m pytest tests/rollout/test_engines_lean.py -k t5

Shapes: B prompts, K candidates, R = B*K rows, N encoder (prompt) tokens, S new tokens, V vocabulary.

The encoder runs once on the B prompts. The first decoder step (the start token, the same for all K
candidates) also runs on B rows, which computes every layer's cross-attention K/V once per prompt;
then the whole cache is repeated K times and decoding continues on R rows, reusing the cross K/V.
The decoder's self-attention cache grows by one column per step (transformers' DynamicCache).

Across turns there is nothing to reuse: the encoder is bidirectional, so one new history token
changes every encoder state and every cross-attention key. Each turn re-encodes its history.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import Tensor
from transformers import AttentionInterface, AttentionMaskInterface, DynamicCache, EncoderDecoderCache
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask
from transformers.modeling_outputs import BaseModelOutput

from cagsr.attention.batch import decoder_start_token_id
from cagsr.attention.tap import TAPS, routed
from cagsr.formatting.batching import pad_rows
from cagsr.models.registry import LoadedModel
from cagsr.rollout.engines import lean
from cagsr.rollout.engines.base import Completion, SamplingConfig
from cagsr.rollout.engines.sampling import choose, make_generator, token_logprobs
from cagsr.utils.modules import unwrap_peft

LEAN_T5_ATTENTION = "cagsr_lean_t5"


def _lean_t5_attention(module, query, key, value, attention_mask, **kwargs):
    """transformers' SDPA attention (it folds T5's position bias into the mask), plus the capture tap."""
    tap = TAPS.get(module)
    if tap is not None:
        tap(query, key, attention_mask, kwargs.get("scaling"), kwargs.get("position_bias"))
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


AttentionInterface.register(LEAN_T5_ATTENTION, _lean_t5_attention)
AttentionMaskInterface.register(LEAN_T5_ATTENTION, sdpa_mask)


def cross_attention_modules(model) -> list:
    """T5's decoder cross-attention modules in layer order (EncDecAttention of every decoder block)."""
    return [block.layer[1].EncDecAttention for block in model.decoder.block]


def _step(model, enc: Tensor, enc_mask: Tensor, cache: EncoderDecoderCache, tokens: Tensor) -> Tensor:
    """One decoder step: tokens [R', 1] -> float32 logits [R', V]."""
    out = model(encoder_outputs=BaseModelOutput(last_hidden_state=enc), attention_mask=enc_mask,
                decoder_input_ids=tokens, past_key_values=cache, use_cache=True)  # fmt: skip
    return out.logits[:, -1].float()


def generate_seq2seq(loaded: LoadedModel, prompts: list[list[int]], sampling: SamplingConfig,
                     seed: int | None, capture_layers: int, onednn=None, k: int = 1
                     ) -> list[list[Completion]]:  # fmt: skip
    """B prompts -> B lists of k completions (CapturedCompletion when capture_layers > 0)."""
    model, steps = unwrap_peft(loaded.model), sampling.max_new_tokens
    eos, pad = loaded.eos_token_id, loaded.tokenizer.pad_token_id
    device = loaded.device
    ids, mask = pad_rows(prompts, pad, left=False)
    ids, enc_mask = ids.to(device), mask.long().to(device)
    capture, taps = None, {}
    if capture_layers:
        modules = cross_attention_modules(model)[-capture_layers:]
        heads = model.config.num_heads * len(modules)
        capture = lean.FusedCapture(len(prompts) * k, steps, ids.shape[1], heads, device)
        taps = dict.fromkeys(modules, capture)
    generator = make_generator(seed, device)
    with routed(model, LEAN_T5_ATTENTION, taps), onednn or nullcontext():
        enc = model.get_encoder()(input_ids=ids, attention_mask=enc_mask).last_hidden_state  # [B, N, d]
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        start = torch.full((len(prompts), 1), decoder_start_token_id(model), dtype=torch.long, device=device)
        if capture is not None:
            capture.rows, capture.step = slice(0, None, k), 0
        logits = _step(model, enc, enc_mask, cache, start).repeat_interleave(k, 0)
        if k > 1:
            cache.batch_repeat_interleave(k)
            enc, enc_mask = enc.repeat_interleave(k, 0), enc_mask.repeat_interleave(k, 0)
            if capture is not None:
                view = capture.sum.view(-1, k, *capture.sum.shape[1:])
                view[:, 1:, 0] = view[:, :1, 0]
        tokens, logps = _decode(model, enc, enc_mask, cache, logits, sampling, generator, capture, eos, pad)
    prompt_columns = [mask[r // k].nonzero().squeeze(-1).to(device) for r in range(len(prompts) * k)]
    return lean.completions(tokens, logps, capture, prompt_columns, k, eos, pad)


def _decode(model, enc, enc_mask, cache, logits, sampling, generator, capture, eos: int, pad: int
            ) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Sample up to S tokens for R rows -> (tokens [R, S'], raw log-probs [R, S'])."""
    r, steps = logits.shape[0], sampling.max_new_tokens
    tokens = torch.full((r, steps), pad, dtype=torch.long, device=logits.device)
    logps = torch.zeros((r, steps), device=logits.device)
    done = torch.zeros(r, dtype=torch.bool, device=logits.device)
    if capture is not None:
        capture.rows = slice(None)
    for s in range(steps):
        nxt = choose(logits, sampling, generator)
        logps[:, s] = token_logprobs(logits, nxt)
        nxt = nxt.masked_fill(done, pad)
        tokens[:, s] = nxt
        done |= nxt == eos
        if s == steps - 1 or bool(done.all()):
            return tokens[:, : s + 1], logps[:, : s + 1]
        if capture is not None:
            capture.step = s + 1
        logits = _step(model, enc, enc_mask, cache, nxt[:, None])
    raise AssertionError("unreachable")
