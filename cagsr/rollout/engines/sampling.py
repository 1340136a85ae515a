"""Next-token choice exactly as transformers' `generate` makes it, without its per-step overhead.

    .venv/bin/python -m pytest tests/rollout/test_engines_sampling.py

Shapes: R rows (B prompts x K candidates), V vocabulary, k kept tokens.

transformers 5.19 applies, when sampling, TemperatureLogitsWarper (if t != 1), TopKLogitsWarper
(if k != 0) and TopPLogitsWarper (if p < 1), in that order, then softmax and one multinomial draw;
greedy decoding is argmax of the raw float32 logits. Here top-k runs as `torch.topk` and top-p then
works on those k values only: after top-k every other token is -inf, contributes zero probability
and zero to the cumulative sum, so the kept set and the distribution are the same as filtering the
whole vocabulary (only the random stream differs, so samples agree in distribution, not draw by draw).
"""

from __future__ import annotations

import torch
from torch import Tensor

from cagsr.rollout.engines.base import SamplingConfig


def warped(logits: Tensor, sampling: SamplingConfig) -> tuple[Tensor, Tensor | None]:
    """[R, V] float32 logits -> (scores [R, k] ascending with -inf on removed tokens, token ids [R, k]).

    The ids are None when nothing was filtered (no top-k, no top-p): then scores are the whole [R, V].
    """
    scores = logits / sampling.temperature if sampling.temperature != 1.0 else logits
    top_k, top_p = sampling.top_k, sampling.top_p
    if top_k == 0 and top_p >= 1.0:
        return scores, None
    if top_k:
        # TopKLogitsWarper keeps max(top_k, min_tokens_to_keep=1) tokens, at most V.
        values, ids = torch.topk(scores, min(top_k, scores.shape[-1]), dim=-1)  # descending
        values, ids = values.flip(-1), ids.flip(-1)
    else:
        values, ids = torch.sort(scores, dim=-1, descending=False)
    if top_p < 1.0:
        # TopPLogitsWarper: drop the low tail whose cumulative probability is <= 1 - p; keep the top token.
        drop = values.softmax(-1).cumsum(-1) <= (1 - top_p)
        drop[..., -1] = False
        values = values.masked_fill(drop, -float("inf"))
    return values, ids


def choose(logits: Tensor, sampling: SamplingConfig, generator: torch.Generator | None = None) -> Tensor:
    """[R, V] float32 logits -> [R] next token ids (greedy argmax or one draw from the warped softmax)."""
    if not sampling.do_sample:
        return logits.argmax(-1)
    scores, ids = warped(logits, sampling)
    pick = torch.multinomial(scores.softmax(-1), 1, generator=generator)  # [R, 1]
    return (pick if ids is None else ids.gather(-1, pick)).squeeze(-1)


def token_logprobs(logits: Tensor, tokens: Tensor) -> Tensor:
    """log p(token) under the raw (unwarped) logits: [R, V], [R] -> [R] (vLLM's default raw log-probs)."""
    return logits.log_softmax(-1).gather(-1, tokens[:, None]).squeeze(-1)


def make_generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    """A private generator for a seeded call (the global stream stays untouched); None uses the global one."""
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(seed)
