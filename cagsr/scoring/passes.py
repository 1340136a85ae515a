"""The teacher-forced passes over rows: policy with attention capture, reference, critic.

In a multi-process run every rank scores the rows of its own episodes (a ScoredPart); the parts
are gathered and merged in rank order so advantages see the whole batch on every rank.

    part = ScoredPart(old_logprobs, ref_logprobs, values, components, rewards)
    whole = merge_parts(all_gather_object(ctx, part))

Shapes: R rows, S response tokens, E episodes, T turns per episode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from cagsr.attention.capture import forward_no_capture, forward_with_capture
from cagsr.attention.config import AttentionConfig
from cagsr.models.forward import token_logprobs
from cagsr.reward.attention_reward import COMPONENTS, turn_components
from cagsr.reward.config import RewardConfig
from cagsr.scoring.rows import RowBatch


@dataclass
class ScoredPart:
    """One rank's scores of its own rows (CPU tensors), merged with the other ranks' by `merge_parts`."""

    old_logprobs: Tensor
    """[R_rank, S] log-probs under the rollout policy."""
    ref_logprobs: Tensor
    """[R_rank, S] log-probs under the reference."""
    values: Tensor
    """[R_rank, S] critic values."""
    components: dict[str, Tensor]
    """[E, T] reward components and turn_mask of the whole batch, zero outside this rank's episodes."""
    rewards: Tensor
    """[E, T] turn rewards, zero outside this rank's episodes."""


def merge_parts(parts: list[ScoredPart]) -> ScoredPart:
    """Rank-ordered parts -> the whole batch: rows concatenate, [E, T] tables add (each entry has one owner,
    the others hold exact zeros, so the sum is exact)."""
    if len(parts) == 1:
        return parts[0]

    def cat(name: str) -> Tensor:
        return torch.cat([getattr(p, name) for p in parts])

    def add(tables: list[Tensor]) -> Tensor:
        total = tables[0].float().clone()
        for table in tables[1:]:
            total += table.float()
        return total

    comps = {k: add([p.components[k] for p in parts]) for k in parts[0].components}
    comps["turn_mask"] = comps["turn_mask"] > 0
    return ScoredPart(
        cat("old_logprobs"), cat("ref_logprobs"), cat("values"), comps, add([p.rewards for p in parts])
    )


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield torch.arange(start, min(n, start + size))


def _scatter_turns(
    target: Tensor, rows: RowBatch, index: Tensor, values: Tensor, turn_index: Tensor, turn_mask: Tensor
) -> None:
    """values [r, t] of rows `index` -> target [E, T] at (row_episode, turn_index)."""
    episodes = rows.row_episode[index][:, None].expand_as(turn_index)
    keep = turn_mask.cpu()
    target[episodes[keep], turn_index.cpu()[keep]] = values.detach().float().cpu()[keep]


@torch.no_grad()
def score_rows(
    policy_model,
    rows: RowBatch,
    n_episodes: int,
    n_turns: int,
    attention: AttentionConfig,
    reward: RewardConfig,
    value_head=None,
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Capture pass over all rows: old log-probs [R, S], head values [R, S], components [E, T]."""
    device = next(policy_model.parameters()).device
    logprobs = torch.zeros(rows.batch.response_ids.shape)
    values = torch.zeros_like(logprobs)
    comps = {k: torch.zeros(n_episodes, n_turns) for k in (*COMPONENTS, "turn_mask")}
    for index in _chunks(rows.num_rows, attention.batch_rows):
        part = rows.select(index).to(device)
        b = part.batch
        cap = forward_with_capture(
            policy_model,
            b,
            attention.last_layers,
            attention.window,
            attention.prune_above,
            part.salient_mask,
            attention.prune_threshold,
        )
        logprobs[index] = token_logprobs(cap.logits, b.response_ids).cpu()
        if value_head is not None:
            values[index] = value_head(cap.hidden).float().cpu()
        out = turn_components(cap, **part.reward_inputs(), cfg=reward)
        for key in (*COMPONENTS, "turn_mask"):
            _scatter_turns(comps[key], rows, index, out[key].float(), out["turn_index"], out["turn_mask"])
    comps["turn_mask"] = comps["turn_mask"].bool()
    return logprobs, values, comps


@torch.no_grad()
def rows_logprobs(model, rows: RowBatch, batch_rows: int) -> Tensor:
    device = next(model.parameters()).device
    out = torch.zeros(rows.batch.response_ids.shape)
    for index in _chunks(rows.num_rows, batch_rows):
        b = rows.select(index).batch.to(device)
        out[index] = token_logprobs(forward_no_capture(model, b)[0], b.response_ids).cpu()
    return out


@torch.no_grad()
def rows_values(critic, rows: RowBatch, batch_rows: int) -> Tensor:
    device = next(critic.parameters()).device
    out = torch.zeros(rows.batch.response_ids.shape)
    for index in _chunks(rows.num_rows, batch_rows):
        out[index] = critic(rows.select(index).batch.to(device)).float().cpu()
    return out


def turn_values(values: Tensor, rows: RowBatch, n_episodes: int, n_turns: int) -> Tensor:
    """Token values [R, S] read at turn starts -> V(H_t) [E, T]."""
    out = torch.zeros(n_episodes, n_turns)
    r, s = rows.turn_start.nonzero(as_tuple=True)
    out[rows.row_episode[r], rows.token_turn[r, s]] = values[r, s]
    return out
