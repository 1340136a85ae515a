"""The attention-reward components of every turn in a batch of rows, from one capture pass.

Glue between the capture (abar over kept history columns) and the pure functions in
functional.py: aligns salient / current-turn masks with the kept columns (window, pruning),
applies the single-turn variant and the ablations, and measures every reward turn of every row:
coverage, focus, repetition and diagnostics. Components only: the reward stage (combine.py) weighs them
into the turn reward, together with the other reward parts.

reward.history_tokens = content leaves the sink columns (reward.sink_tokens: template, special, first)
out of coverage and focus and renormalises each attention row over the remaining content columns: on a
decoder-only model over half of a response token's history attention sits on the first token, so
entropy over all columns mostly measures that sink (docs/results/validity-taskmaster.md).

Shapes: R rows, S response tokens, N history tokens, C kept columns, T turns per row.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cagsr.attention.capture import CaptureResult
from cagsr.reward import functional as RF
from cagsr.reward.config import RewardConfig, parse_sinks, resolve_reward
from cagsr.reward.head_probe import HeadProbeConfig, probe_of, probe_score, turn_head_features

COMPONENTS = ("coverage", "focus", "repetition", "entropy", "clamped_fraction", "history_mass", "sink_mass")
# An encoder-decoder capture's history mass is a full softmax row (1 up to rounding); a decoder-only
# response token beyond the first also attends to earlier response tokens, so its mass falls below 1.
ENC_DEC_MASS_TOLERANCE = 1e-4


def align_columns(token_mask: Tensor, kept_index: Tensor | None, n_columns: int) -> Tensor:
    """[R, N] per-history-token mask -> [R, C] mask over abar's columns.

    Without pruning or a window the columns are the history itself. A window puts one summary
    bucket first (C = W + 1): it stands for many old tokens, so it is never salient or current.
    """
    if kept_index is None:
        return token_mask
    gathered = token_mask.gather(1, kept_index.clamp(min=0)) & (kept_index >= 0)
    if gathered.shape[1] == n_columns:
        return gathered
    return torch.cat([gathered.new_zeros(gathered.shape[0], 1), gathered], dim=1)


def column_validity(history_mask: Tensor, kept_index: Tensor | None, n_columns: int) -> Tensor:
    """[R, C] real columns (a window's summary bucket counts when older tokens exist)."""
    if kept_index is None:
        return history_mask
    valid = kept_index >= 0
    if valid.shape[1] == n_columns:
        return valid
    older = history_mask.sum(-1) > valid.sum(-1)
    return torch.cat([older[:, None], valid], dim=1)


def sink_mask(history_mask: Tensor, template_mask: Tensor, special_mask: Tensor, kinds: frozenset[str]) -> Tensor:
    """[R, N] bool: the real history tokens of the given sink kinds (template, special, first)."""
    history = history_mask.bool()
    out = torch.zeros_like(history)
    if "template" in kinds:
        out |= template_mask.bool()
    if "special" in kinds:
        out |= special_mask.bool()
    if "first" in kinds:
        # The first real column whatever the padding side (decoder-only histories are left-padded).
        first = history.int().argmax(-1)
        out[torch.arange(out.shape[0], device=out.device), first] |= history.any(-1)
    return out & history


def sink_columns(sinks: Tensor, columns: Tensor, kept_index: Tensor | None, n_columns: int) -> Tensor:
    """[R, N] sink tokens -> [R, C] sink columns. A window's summary bucket holds the oldest tokens, the
    first one (the decoder-only sink) among them, so it counts as a sink whenever it is real."""
    out = align_columns(sinks, kept_index, n_columns)
    if kept_index is not None and out.shape[1] == kept_index.shape[1] + 1:
        out[:, 0] = columns[:, 0]
    return out


def resolve_for_capture(cfg: RewardConfig, capture: CaptureResult, response_mask: Tensor) -> RewardConfig:
    """cfg with sink_tokens 'auto' resolved. Entry points resolve it from the loaded model (reward.config.resolve_reward);
    a config that arrives unresolved takes the model kind from the capture: encoder-decoder when every
    real response row's history mass is 1. A batch of one-token decoder responses reads as encoder-decoder."""
    if cfg.sink_tokens != "auto":
        return cfg
    mass = capture.history_mass[response_mask.bool()]
    return resolve_reward(cfg, not bool((mass < 1 - ENC_DEC_MASS_TOLERANCE).any()))


def restrict(abar: Tensor, columns: Tensor) -> Tensor:
    """abar [R, S, C] restricted to columns [R, C] and renormalised (rows with no mass stay 0)."""
    kept = masked(abar, columns)
    return kept / kept.sum(-1, keepdim=True).clamp_min(1e-12)


def masked(abar: Tensor, columns: Tensor) -> Tensor:
    """abar [R, S, C] with every column outside columns [R, C] set to 0 (selected away: padding may hold NaN)."""
    return torch.where(columns[:, None, :].bool(), abar, torch.zeros_like(abar))


def token_mean(values: Tensor, seg: Tensor) -> Tensor:
    """[R, S] per-token values -> [R] mean over the tokens in seg [R, S] (padding selected away, 0 if none)."""
    return torch.where(seg, values, torch.zeros_like(values)).sum(-1) / seg.sum(-1).clamp_min(1)


def _probe_turn(capture: CaptureResult, seg: Tensor, probe: HeadProbeConfig) -> Tensor:
    """[R] head-probe score of one turn (seg [R, S] its tokens)."""
    if capture.head_stats is None:
        raise ValueError("reward.kind head_probe: the capture kept no per-head statistics (pass HeadRequest)")
    return probe_score(turn_head_features(capture.head_stats, seg, probe.head_list, probe.features), probe)


def _coverage_focus(abar: Tensor, entropy: Tensor, salient: Tensor, columns: Tensor, seg: Tensor, tau: float,
                    is_cot: Tensor, block_tokens: int) -> tuple[Tensor, Tensor, Tensor]:
    """Coverage, focus and the clamped share of one turn, each [R]: over its tokens, or (chain-of-thought
    rows, block_tokens > 0) over pooled blocks of block_tokens tokens. abar [R, S, N], entropy [R, S],
    salient / columns [R, N], seg [R, S], is_cot [R]."""
    cov, foc = RF.coverage(abar, salient, seg), RF.focus(entropy, tau, seg)
    clamped = RF.floor_fraction(entropy, tau, seg)
    if block_tokens > 0 and bool(is_cot.any()):
        pooled, block_mask = RF.block_pool(abar, seg, block_tokens)
        block_entropy = RF.attention_entropy(pooled, columns)
        cov = torch.where(is_cot, RF.coverage(pooled, salient, block_mask), cov)
        foc = torch.where(is_cot, RF.focus(block_entropy, tau, block_mask), foc)
        clamped = torch.where(is_cot, RF.floor_fraction(block_entropy, tau, block_mask), clamped)
    return cov, foc, clamped


def turn_components(capture: CaptureResult, *, history_ids: Tensor, history_mask: Tensor, response_ids: Tensor,
                    response_mask: Tensor, salient_mask: Tensor, current_mask: Tensor, template_mask: Tensor,
                    special_mask: Tensor, token_turn: Tensor, is_cot: Tensor, cfg: RewardConfig
                    ) -> dict[str, Tensor]:
    """Every component for every (row, turn): dict of [R, T] tensors plus 'turn_mask' [R, T] (no reward: the
    reward stage, combine.py, weighs the components).

    history_* / salient_mask / current_mask / template_mask / special_mask: [R, N];
    response_*: [R, S]. token_turn [R, S]: episode turn index of each response token (-1 on
    padding); the entropy floor uses tau_t = tau0 + kappa * t with t that index. is_cot [R]
    bool: block checkpoints. clamped_fraction: share of the tokens (CoT: blocks) focus clamps at the
    floor. sink_mass: the turn's mean attention on the reward.sink_tokens columns
    (before content mode leaves them out).
    """
    cfg = resolve_for_capture(cfg, capture, response_mask)
    abar, n_cols = capture.abar.float(), capture.abar.shape[-1]
    columns = column_validity(history_mask, capture.kept_index, n_cols)
    salient = align_columns(salient_mask & history_mask, capture.kept_index, n_cols)
    current = align_columns(current_mask & history_mask, capture.kept_index, n_cols)
    sinks = sink_columns(sink_mask(history_mask, template_mask, special_mask, parse_sinks(cfg.sink_tokens)),
                         columns, capture.kept_index, n_cols)
    sink_mass = masked(abar, sinks & columns).sum(-1)  # [R, S], of the all-history rows
    if cfg.history_tokens == "content":
        columns = columns & ~sinks
        abar, salient, current = restrict(abar, columns), salient & columns, current & columns
    if cfg.history == "single_turn":
        abar, columns, salient = restrict(abar, current), current, salient & current
    elif cfg.coverage_scope == "current_turn":
        salient = salient & current
    entropy_all = RF.attention_entropy(abar, columns)  # [R, S]
    turns = sorted({int(t) for t in token_turn[response_mask].tolist()})
    turn_index = torch.tensor(turns or [0], device=abar.device)
    out = {k: abar.new_zeros(abar.shape[0], len(turn_index)) for k in COMPONENTS}
    out["turn_mask"] = torch.zeros_like(out["coverage"], dtype=torch.bool)
    out["turn_index"] = turn_index.expand(abar.shape[0], -1)
    probe = probe_of(cfg)
    if probe is not None:  # the head-probe reward reads per-head statistics of the same capture
        out["head_probe"] = abar.new_zeros(abar.shape[0], len(turn_index))
    for k, turn in enumerate(turns):
        seg = response_mask & (token_turn == turn)
        present = seg.any(-1)
        tau = RF.entropy_floor(turn, cfg.tau0, cfg.kappa)
        cov, foc, clamped = _coverage_focus(abar, entropy_all, salient, columns, seg, tau, is_cot, cfg.block_tokens)
        rep = RF.history_repetition(response_ids, seg, history_ids, history_mask, cfg.repetition_ngram)
        out["coverage"][:, k], out["focus"][:, k], out["repetition"][:, k] = cov, foc, rep
        out["entropy"][:, k] = token_mean(entropy_all, seg)
        out["clamped_fraction"][:, k] = clamped
        out["history_mass"][:, k] = token_mean(capture.history_mass.float(), seg)
        out["sink_mass"][:, k] = token_mean(sink_mass, seg)
        if probe is not None:
            out["head_probe"][:, k] = _probe_turn(capture, seg, probe)
        out["turn_mask"][:, k] = present
    for key in (*COMPONENTS, *(("head_probe",) if probe is not None else ())):
        out[key] = out[key] * out["turn_mask"]
    return out
