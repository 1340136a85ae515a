"""Tiny random models of the three kinds capture must handle, and batch builders (test helpers).

Shapes: B batch, N history tokens, S response tokens.
The decoder-only models use initializer_range 0.2 so attention is peaked: with the default 0.02
every row is nearly uniform and a row misaligned by one would still pass a 1e-5 comparison.
"""

from __future__ import annotations

import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
)

from cagsr.attention import TeacherForcedBatch

VOCAB = 512
KINDS = ["t5", "llama", "gpt2"]


def tiny_model(kind: str, attn: str = "eager", seed: int = 0):
    torch.manual_seed(seed)
    if kind == "t5":
        cfg = T5Config(vocab_size=VOCAB, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                       decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, attn_implementation=attn)  # fmt: skip
        model = T5ForConditionalGeneration(cfg)
    elif kind == "llama":  # GQA: 4 query heads share 2 kv heads
        cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, initializer_range=0.2,
                          max_position_embeddings=8192, bos_token_id=1, eos_token_id=2, pad_token_id=0, attn_implementation=attn)  # fmt: skip
        model = LlamaForCausalLM(cfg)
    else:
        cfg = GPT2Config(vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4, n_positions=256,
                         initializer_range=0.2, bos_token_id=1, eos_token_id=2, pad_token_id=0, attn_implementation=attn)  # fmt: skip
        model = GPT2LMHeadModel(cfg)
    # Set through the config: T5's set_attn_implementation does not reach its stacks' copied configs.
    return model.eval()


def history(kind: str, lengths: list[int], n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Random history ids/mask [B, N]: right-padded for T5, left-padded for decoder-only."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (len(lengths), n), generator=g)
    mask = torch.zeros(len(lengths), n, dtype=torch.bool)
    for b, length in enumerate(lengths):
        if kind == "t5":
            mask[b, :length] = True
        else:
            mask[b, n - length :] = True
    return ids.masked_fill(~mask, 0), mask


def random_batch(kind: str, lengths: list[int], n: int, s: int, seed: int = 1) -> TeacherForcedBatch:
    ids, mask = history(kind, lengths, n, seed)
    g = torch.Generator().manual_seed(seed + 100)
    resp = torch.randint(3, VOCAB, (len(lengths), s), generator=g)
    return TeacherForcedBatch(ids, mask, resp, torch.ones_like(resp, dtype=torch.bool))
