"""The teacher-forced passes over rows: policy with attention capture, reference, critic.

The capture pass gives each turn's attention-reward components (coverage, focus, repetition, ...),
not a reward: the reward stage (reward/combine.py) weighs them.

Each pass reads the rows through the layout of layout.py (one sequence per dialogue when packed)
and writes its outputs back in the rows' own [R, S] / [E, T] layout, so nothing downstream knows how
the tokens were laid out.

In a multi-process run every rank scores the rows of its own episodes (a ScoredPart); the parts
are gathered and merged in rank order so advantages see the whole batch on every rank.

    scores = score_rows(policy, rows, n_episodes=E, n_turns=T, attention=..., reward=..., scoring=...)
    whole = merge_parts(all_gather_object(ctx, part))

Shapes: R rows, S response tokens, E episodes, T turns per episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import Tensor, nn

from cagsr.attention.batch import is_encoder_decoder
from cagsr.attention.capture import CaptureResult, forward_with_capture
from cagsr.attention.config import AttentionConfig
from cagsr.attention.forward import forward_no_capture
from cagsr.attention.heads import Head, HeadRequest, all_heads, parse_heads
from cagsr.attention.tap import attention_modules
from cagsr.models.forward import token_logprobs
from cagsr.reward.attention_reward import COMPONENTS, turn_components
from cagsr.reward.definition import AttentionTerms
from cagsr.reward.head_probe import probe_of, turn_mean_lookback
from cagsr.reward.intrinsic import INTRINSIC, intrinsic_components
from cagsr.rollout.engines.onednn import fast_no_grad
from cagsr.scoring.config import ScoringConfig
from cagsr.scoring.layout import LayoutStats, Pass, plan_passes
from cagsr.scoring.rows import RowBatch
from cagsr.utils.modules import unwrap_peft


@dataclass(kw_only=True)
class PolicyScores:
    """What the capture pass gives for every row."""

    logprobs: Tensor
    """[R, S] log-probs of the response tokens (0 on padding)."""
    values: Tensor
    """[R, S] value-head values at every response token (zeros without a head)."""
    components: dict[str, Tensor]
    """[E, T] reward components, the log-prob signals (reward/intrinsic.py) and turn_mask (all zero and
    turn_mask False when the pass read no reward)."""


SIGNALS = (*COMPONENTS, *INTRINSIC)
"""The [E, T] tables one capture pass gives besides turn_mask."""


@dataclass(kw_only=True)
class ScoredPart:
    """One rank's scores of its own rows (CPU tensors), merged with the other ranks' by `merge_parts`."""

    old_logprobs: Tensor = field(metadata={"per": "row"})
    """[R_rank, S] log-probs under the rollout policy."""
    ref_logprobs: Tensor = field(metadata={"per": "row"})
    """[R_rank, S] log-probs under the reference."""
    values: Tensor = field(metadata={"per": "row"})
    """[R_rank, S] critic values."""
    rewards: Tensor = field(metadata={"per": "turn"})
    """[E, T] turn rewards, zero outside this rank's episodes."""
    components: dict[str, Tensor] = field(metadata={"per": "turn"})
    """[E, T] reward components and turn_mask of the whole batch, zero outside this rank's episodes."""


def _add(tables: list[Tensor]) -> Tensor:
    total = tables[0].float().clone()
    for table in tables[1:]:
        total += table.float()
    return total


def merge_parts(parts: list[ScoredPart]) -> ScoredPart:
    """Rank-ordered parts -> the whole batch: rows concatenate, [E, T] tables add (each entry has one owner,
    the others hold exact zeros, so the sum is exact)."""
    if len(parts) == 1:
        return parts[0]
    merged = {}
    for f in fields(ScoredPart):
        values = [getattr(p, f.name) for p in parts]
        if f.metadata["per"] == "row":
            merged[f.name] = torch.cat(values)
        elif isinstance(values[0], dict):
            merged[f.name] = {k: _add([v[k] for v in values]) for k in values[0]}
        else:
            merged[f.name] = _add(values)
    merged["components"]["turn_mask"] = merged["components"]["turn_mask"] > 0
    return ScoredPart(**merged)


def plan(model: nn.Module, rows: RowBatch, scoring: ScoringConfig, stats: LayoutStats | None = None) -> list[Pass]:
    """The passes of `rows` for `model` (any pad id works: padding tails are sequences of their own)."""
    passes = plan_passes(rows, layout=scoring.layout, token_budget=scoring.token_budget, pad_id=0,
                         encoder_decoder=is_encoder_decoder(unwrap_peft(model)))
    if stats is not None:
        stats.add(passes)
    return passes


def _scatter_turns(target: Tensor, owners: Tensor, values: Tensor, turn_index: Tensor, turn_mask: Tensor) -> None:
    """values [r, t] of rows owned by episodes `owners` [r] -> target [E, T] at (owner, turn_index)."""
    episodes = owners[:, None].expand_as(turn_index)
    keep = turn_mask.cpu()
    target[episodes[keep], turn_index.cpu()[keep]] = values.detach().float().cpu()[keep]


@torch.no_grad()
def score_rows(policy_model: nn.Module, rows: RowBatch, *, n_episodes: int, n_turns: int, attention: AttentionConfig,
               reward: AttentionTerms | None, scoring: ScoringConfig, value_head: nn.Module | None = None,
               stats: LayoutStats | None = None) -> PolicyScores:
    """Capture pass over all rows: log-probs, head values and every turn's reward components and log-prob
    signals. reward None: a plain pass (no attention capture), for a model whose reward is read elsewhere."""
    device = next(policy_model.parameters()).device
    logprobs = torch.zeros(rows.response_ids.shape)
    values = torch.zeros_like(logprobs)
    comps = _empty_components(n_episodes, n_turns)
    for part in plan(policy_model, rows, scoring, stats):
        view = rows.select(part.rows).to(device)
        with fast_no_grad(policy_model, scoring.onednn_weights):
            if reward is None:
                logits, hidden = forward_no_capture(policy_model, part.batch.to(device))
            else:
                cap = _capture(policy_model, part, view, attention, device, [reward])
                logits, hidden = cap.logits, cap.hidden
        logprobs[part.rows] = (token_logprobs(logits, view.response_ids) * view.response_mask).cpu()
        if value_head is not None:
            values[part.rows] = (value_head(hidden).float() * view.response_mask).cpu()
        if reward is not None:
            _scatter_components(comps, view, cap, reward)
    comps["turn_mask"] = comps["turn_mask"].bool()
    return PolicyScores(logprobs=logprobs, values=values, components=comps)


@torch.no_grad()
def reference_pass(model: nn.Module, rows: RowBatch, *, read: bool, n_episodes: int, n_turns: int,
                   attention: AttentionConfig, reward: AttentionTerms, scoring: ScoringConfig,
                   stats: LayoutStats | None = None) -> tuple[Tensor, dict[str, Tensor] | None]:
    """The reference's one pass: [R, S] log-probs for the KL penalty and, with read (reward.reader reference),
    the [E, T] reward components and log-prob signals of its attention and logits (None without read)."""
    if not read:
        return rows_logprobs(model, rows, scoring, stats), None
    scores = score_rows(model, rows, n_episodes=n_episodes, n_turns=n_turns, attention=attention, reward=reward,
                        scoring=scoring, stats=stats)
    return scores.logprobs, scores.components


@torch.no_grad()
def score_versions(model: nn.Module, rows: RowBatch, *, n_episodes: int, n_turns: int, attention: AttentionConfig,
                   rewards: dict[str, AttentionTerms], scoring: ScoringConfig) -> dict[str, dict[str, Tensor]]:
    """[E, T] reward components and turn_mask under each named reward version, from one capture pass: the
    versions differ only in what they read from the captured attention, so one pass serves them all."""
    device = next(model.parameters()).device
    comps = {name: _empty_components(n_episodes, n_turns) for name in rewards}
    for part in plan(model, rows, scoring):
        view = rows.select(part.rows).to(device)
        with fast_no_grad(model, scoring.onednn_weights):
            cap = _capture(model, part, view, attention, device, list(rewards.values()))
        for name, reward in rewards.items():
            _scatter_components(comps[name], view, cap, reward)
    for table in comps.values():
        table["turn_mask"] = table["turn_mask"].bool()
    return comps


def _empty_components(n_episodes: int, n_turns: int) -> dict[str, Tensor]:
    return {k: torch.zeros(n_episodes, n_turns) for k in (*SIGNALS, "turn_mask")}


def every_head(model: nn.Module) -> tuple[Head, ...]:
    """Every (layer, head) of the attention the capture reads (cross-attention for encoder-decoder models)."""
    base = unwrap_peft(model)
    layers = len(attention_modules(base, cross=is_encoder_decoder(base)))
    config = base.config
    heads = next(v for k in ("num_attention_heads", "num_heads", "n_head")
                 if isinstance(v := getattr(config, k, None), int))
    return all_heads(layers, heads)


def head_request(attention: AttentionConfig, rewards: list[AttentionTerms], model: nn.Module | None = None
                 ) -> HeadRequest | None:
    """The heads a capture reads for these settings: attention.heads for abar, a head probe's heads and, when a
    reward wants the per-head signals, every head of `model` for per-head statistics (None: the default)."""
    probes = [p for p in map(probe_of, rewards) if p is not None]
    wanted = [h for p in probes for h in p.head_list]
    if model is not None and any(getattr(r, "head_signals", False) for r in rewards):
        wanted += every_head(model)
    features = tuple(dict.fromkeys(wanted))
    if not attention.heads and not features:
        return None
    return HeadRequest(abar=parse_heads(attention.heads) or None, features=features)


def _capture(model: nn.Module, part: Pass, view: RowBatch, attention: AttentionConfig, device,
             rewards: list[AttentionTerms]) -> CaptureResult:
    return forward_with_capture(model, part.batch.to(device), attention.last_layers, attention.window,
                                attention.prune_above, view.salient_mask, attention.prune_threshold,
                                heads=head_request(attention, rewards, model))


def _scatter_components(comps: dict[str, Tensor], view: RowBatch, cap: CaptureResult, reward: AttentionTerms) -> None:
    """Adds the components of the rows in `view` to the [E, T] tables `comps`."""
    out = turn_components(cap, **view.reward_inputs(), cfg=reward)
    out |= intrinsic_components(cap.logits, view.response_ids, view.response_mask, view.token_turn, out["turn_index"])
    if getattr(reward, "head_signals", False):
        turns = out["turn_index"][0].tolist()
        lookback = turn_mean_lookback(cap.head_stats, view.response_mask, view.token_turn, turns)
        out["mean_lookback"] = lookback * out["turn_mask"]
    for key in (k for k in out if k != "turn_index"):  # a head probe's score joins the components
        table = comps.setdefault(key, torch.zeros_like(comps["coverage"]))
        _scatter_turns(table, view.row_episode.cpu(), out[key].float(), out["turn_index"], out["turn_mask"])


@torch.no_grad()
def rows_logprobs(model: nn.Module, rows: RowBatch, scoring: ScoringConfig, stats: LayoutStats | None = None
                  ) -> Tensor:
    """[R, S] log-probs of the response tokens under `model` (0 on padding)."""
    device = next(model.parameters()).device
    out = torch.zeros(rows.response_ids.shape)
    for part in plan(model, rows, scoring, stats):
        view = rows.select(part.rows).to(device)
        with fast_no_grad(model, scoring.onednn_weights):
            logits, _ = forward_no_capture(model, part.batch.to(device))
        out[part.rows] = (token_logprobs(logits, view.response_ids) * view.response_mask).cpu()
    return out


@torch.no_grad()
def rows_values(critic: nn.Module, rows: RowBatch, scoring: ScoringConfig, stats: LayoutStats | None = None
                ) -> Tensor:
    """[R, S] values of a separate critic (a model that takes a batch) at every response token."""
    device = next(critic.parameters()).device
    out = torch.zeros(rows.response_ids.shape)
    for part in plan(critic.backbone, rows, scoring, stats):
        with fast_no_grad(critic, scoring.onednn_weights):
            out[part.rows] = critic(part.batch.to(device)).float().cpu() * rows.response_mask[part.rows]
    return out
