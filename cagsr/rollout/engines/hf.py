"""The default engine: transformers' `generate` with its KV cache, for both model kinds."""

from __future__ import annotations

import torch

from cagsr.formatting.batching import pad_rows
from cagsr.models.registry import LoadedModel
from cagsr.rollout.engines.base import Completion, SamplingConfig


def split_completion(ids: list[int], eos: int, pad: int) -> Completion:
    """Cut a generated row after its end token; trailing padding is dropped."""
    if eos in ids:
        return Completion(ids[: ids.index(eos) + 1], finished=True)
    while ids and ids[-1] == pad and pad != eos:
        ids = ids[:-1]
    return Completion(ids, finished=False)


class HFEngine:
    """Batched `model.generate`; left-padded prompts for decoder-only, encoder inputs for seq2seq."""

    name = "hf"

    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded

    def sync_weights(self) -> None:
        """Shares the policy's parameters: nothing to copy."""

    @torch.no_grad()
    def generate(self, prompts: list[list[int]], sampling: SamplingConfig, seed: int | None = None,
                 sessions=None, *, candidates: int = 1) -> list[list[Completion]]:
        loaded, k = self.loaded, candidates
        ids, mask = pad_rows(prompts, loaded.tokenizer.pad_token_id, left=not loaded.is_encoder_decoder)
        if seed is not None:
            torch.manual_seed(seed)
        was_training = loaded.model.training
        loaded.model.eval()
        out = loaded.model.generate(
            input_ids=ids.to(loaded.device), attention_mask=mask.long().to(loaded.device),
            do_sample=sampling.do_sample, temperature=sampling.temperature if sampling.do_sample else None,
            top_k=sampling.top_k if sampling.do_sample else None, top_p=sampling.top_p if sampling.do_sample else None,
            max_new_tokens=sampling.max_new_tokens, num_return_sequences=k,
            eos_token_id=loaded.eos_token_id, pad_token_id=loaded.tokenizer.pad_token_id,
        )
        loaded.model.train(was_training)
        start = 1 if loaded.is_encoder_decoder else ids.shape[1]  # seq2seq rows begin with the start token
        rows = out[:, start:].tolist()
        eos, pad = loaded.eos_token_id, loaded.tokenizer.pad_token_id
        completions = [split_completion(row, eos, pad) for row in rows]
        return [completions[i * k : (i + 1) * k] for i in range(len(prompts))]
