"""Retrieval heads, label-free: how often each head's strongest attention lands on the token being copied.

    task = copy_task(loaded.tokenizer, examples=16, history_tokens=200, copy_tokens=24, seed=0)
    scores = retrieval_scores(loaded.model, task)          # [L*H] in all_heads(L, H) order
    top = top_heads(scores, heads, k=8)                    # -> attention.heads "29.3,..."

The synthetic copy task (after Wu et al. 2024, "Retrieval Head Mechanistically Explains Long-Context
Factuality"): each history is a seeded sequence of distinct word tokens; the response is a span of
that history copied token for token, read teacher-forced in one capture pass. At response step s >= 1
(the span's start is given away by y_1, so step 0 is left out) the token to predict was copied from
history column source[s]; a head scores a hit when its strongest key over the whole sequence is that
column. Wu et al. also require the model to emit the copied token; teacher forcing scores the head on
every copy step, and `copy_accuracy` reports how often the model's own top prediction was right.

Shapes: B examples, N history tokens, S copied tokens, F heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cagsr.attention.batch import TeacherForcedBatch, is_encoder_decoder
from cagsr.attention.capture import forward_with_capture
from cagsr.attention.heads import Head, HeadRequest, all_heads
from cagsr.attention.tap import attention_modules

# Token ids are drawn from those that decode to one lower-case word with a leading space: plain text,
# so no special, byte-fallback or punctuation token stands out for attention to latch onto.
MIN_WORD_CHARS = 3


@dataclass(kw_only=True)
class CopyTask:
    """Teacher-forced copy examples and where each copied token came from."""

    batch: TeacherForcedBatch
    """History [B, N] (distinct word tokens) and response [B, S] (a span of it)."""
    source: Tensor
    """[B, S] long: history column each response token was copied from."""
    scored: Tensor
    """[B, S] bool: the steps that count (every step but the first)."""


def word_tokens(tokenizer, limit: int = 20000) -> list[int]:
    """Ids below `limit` that decode to ' word' (a space, then at least MIN_WORD_CHARS lower-case letters)."""
    special = set(tokenizer.all_special_ids)
    out = []
    for i in range(min(limit, len(tokenizer))):
        text = tokenizer.decode([i])
        word = text[1:]
        if i not in special and text.startswith(" ") and len(word) >= MIN_WORD_CHARS and word.isalpha() \
                and word.islower():
            out.append(i)
    return out


def copy_task(tokenizer, *, examples: int = 16, history_tokens: int = 200, copy_tokens: int = 24, seed: int = 0,
              vocabulary: list[int] | None = None) -> CopyTask:
    """Seeded copy examples: each history holds distinct word tokens, the response copies one span of it."""
    pool = torch.tensor(vocabulary if vocabulary is not None else word_tokens(tokenizer))
    if pool.numel() < history_tokens:
        raise ValueError(f"copy task: {pool.numel()} word tokens, fewer than history_tokens={history_tokens}")
    if not 2 <= copy_tokens <= history_tokens:
        raise ValueError(f"copy task: copy_tokens must be in 2..{history_tokens}, got {copy_tokens}")
    g = torch.Generator().manual_seed(seed)
    history = torch.stack([pool[torch.randperm(pool.numel(), generator=g)[:history_tokens]] for _ in range(examples)])
    start = torch.randint(0, history_tokens - copy_tokens + 1, (examples,), generator=g)
    source = start[:, None] + torch.arange(copy_tokens)  # [B, S]
    response = history.gather(1, source)
    scored = torch.ones_like(source, dtype=torch.bool)
    scored[:, 0] = False
    ones = torch.ones_like(history, dtype=torch.bool)
    return CopyTask(batch=TeacherForcedBatch(history, ones, response, torch.ones_like(response, dtype=torch.bool)),
                    source=source, scored=scored)


def retrieval_score(top: Tensor, source: Tensor, scored: Tensor) -> Tensor:
    """[F] share of the scored copy steps where a head's strongest key is the copied token's column.

    top: [B, S, F] history column of each head's strongest key (-1: none); source: [B, S]; scored: [B, S] bool.
    """
    hits = (top == source[..., None]) & scored[..., None]
    return hits.sum((0, 1)).float() / scored.sum().clamp_min(1)


@torch.no_grad()
def retrieval_scores(model: nn.Module, task: CopyTask, batch_size: int = 4) -> tuple[Tensor, tuple[Head, ...], float]:
    """(scores [L*H], the heads in that order, copy accuracy of the model's own top-1 predictions)."""
    layers = len(attention_modules(model, cross=is_encoder_decoder(model)))
    cfg = model.config
    heads = all_heads(layers, int(getattr(cfg, "num_attention_heads", None) or cfg.num_heads))
    device = next(model.parameters()).device
    hits, correct = torch.zeros(len(heads)), 0
    for lo in range(0, task.source.shape[0], batch_size):
        part = slice(lo, lo + batch_size)
        b = task.batch
        batch = TeacherForcedBatch(b.history_ids[part], b.history_mask[part], b.response_ids[part],
                                   b.response_mask[part]).to(device)
        cap = forward_with_capture(model, batch, heads=HeadRequest(features=heads))
        scored = task.scored[part]
        hits += retrieval_score(cap.head_stats.top.cpu(), task.source[part], scored) * scored.sum()
        correct += int(((cap.logits.argmax(-1).cpu() == b.response_ids[part]) & scored).sum())
    total = int(task.scored.sum())
    return hits / max(total, 1), heads, correct / max(total, 1)


def top_heads(scores: Tensor, heads: tuple[Head, ...], k: int) -> tuple[Head, ...]:
    """The k heads with the highest scores (ties: earlier layer, lower head first)."""
    order = sorted(range(len(heads)), key=lambda i: (-float(scores[i]), heads[i]))
    return tuple(heads[i] for i in order[:k])
