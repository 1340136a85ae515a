"""The benchmark's inputs: the model (with an end token it never produces), prompts and user messages.

    .venv/bin/python -c "from cagsr.bench.workload import *; lm = bench_model('tiny-llama', 'cpu', 'float32'); print(chat_prompts(lm, 2, 32, 0))"

Shapes: B prompts, N prompt tokens, U user-message tokens.

Every engine must do the same work, so every row generates exactly S tokens: the end token is swapped
for an id the model does not sample (the last vocabulary id; rows report their mean length to show it).
Prompts are chat-formatted synthetic conversations cut to their last N tokens (they keep the assistant
prompt at the end); models without a tokenizer (random configs) get random ids.
"""

from __future__ import annotations

import random

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from cagsr.models.registry import LoadedModel, load_model

# Llama-shaped configs with the SmolLM2 vocabulary, for GPUs where no pretrained model is at hand.
RANDOM_CONFIGS = {
    "random-0.5b": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                        num_key_value_heads=4),
    "random-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                      num_key_value_heads=8),
}  # fmt: skip
_WORDS_TEXT = ("order account delivery refund parcel address invoice password upgrade warranty printer router screen "
         "battery charger ticket booking flight hotel table menu weather garden kitchen monday friday morning "
         "evening price colour size blue green small large please thanks problem broken missing late")  # fmt: skip
WORDS = _WORDS_TEXT.split()


class NeverEnds:
    """Tokenizer proxy whose chat end token and padding are `end`; everything else is the wrapped tokenizer's.

    Padding = end as well, so no real token (the chat end marker is SmolLM2's padding) is ever cut from a reply.
    """

    unk_token_id = -1

    def __init__(self, tokenizer, end: int) -> None:
        self._tokenizer, self._end = tokenizer, end
        self.pad_token_id = end

    def __getattr__(self, name: str):
        return getattr(self._tokenizer, name)

    def convert_tokens_to_ids(self, token):
        return self._end


class IdsOnly:
    """Stands in for a tokenizer where a model has none (random weights): pad id only."""

    pad_token_id = 0
    eos_token_id = 2

    def save_pretrained(self, folder) -> None:
        raise NotImplementedError("random-weight models have no tokenizer: the vLLM engine cannot load them")


def bench_model(name: str, device: str, dtype: str) -> LoadedModel:
    """A model for timing, whose end token it never samples (so every row runs S steps)."""
    if name in RANDOM_CONFIGS:
        target = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                              ("cpu" if device == "auto" else device))  # fmt: skip
        cfg = LlamaConfig(vocab_size=49152, max_position_embeddings=8192, tie_word_embeddings=True,
                          bos_token_id=1, eos_token_id=2, pad_token_id=0, **RANDOM_CONFIGS[name])  # fmt: skip
        with torch.device(target):  # initialise in place: a 1B model built on a CPU first takes minutes
            model = LlamaForCausalLM(cfg).to(getattr(torch, dtype)).eval()
        loaded = LoadedModel(model, IdsOnly(), name)
    else:
        from cagsr.models.config import ModelConfig

        loaded = load_model(ModelConfig(name=name, device=device, dtype=dtype))
    vocab = loaded.model.get_output_embeddings().weight.shape[0]
    loaded.tokenizer = NeverEnds(loaded.tokenizer, vocab - 1)
    return loaded


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def _has_chat(loaded: LoadedModel) -> bool:
    return not isinstance(loaded.tokenizer._tokenizer, IdsOnly)


def chat_prompts(loaded: LoadedModel, b: int, n: int, seed: int) -> list[list[int]]:
    """B prompts of exactly N tokens: synthetic user/agent turns, formatted, cut to the last N tokens."""
    rng = random.Random(seed)
    if not _has_chat(loaded):
        return [[rng.randrange(10, 40000) for _ in range(n)] for _ in range(b)]
    from cagsr.data.schema import Utterance
    from cagsr.formatting import format_history

    prompts = []
    for _ in range(b):
        turns = [
            Utterance(role="user" if i % 2 == 0 else "agent", text=_sentence(rng, 12)) for i in range(64)
        ]
        turns = turns[: len(turns) - (len(turns) % 2 == 0)]  # end on a user turn
        ids = format_history(loaded.tokenizer._tokenizer, turns, loaded.is_encoder_decoder).input_ids
        if len(ids) < n:
            raise ValueError(f"bench: synthetic history has {len(ids)} tokens, fewer than prompt_tokens={n}")
        prompts.append(ids[-n:])
    return prompts


def user_message(loaded: LoadedModel, u: int, rng: random.Random) -> list[int]:
    """U tokens that close the agent's reply and open the next assistant turn around a user message."""
    if not _has_chat(loaded):
        return [rng.randrange(10, 40000) for _ in range(u)]
    tok = loaded.tokenizer._tokenizer
    head = tok("<|im_end|>\n<|im_start|>user\n", add_special_tokens=False)["input_ids"]
    tail = tok("<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    body = tok(_sentence(rng, 4 * u), add_special_tokens=False)["input_ids"][
        : max(0, u - len(head) - len(tail))
    ]
    return [*head, *body, *tail]
