"""Exact, cheap attention capture inside one teacher-forced forward pass.

Shapes: B batch, S response tokens, N history tokens, T = N + S, L layers, H query heads,
Hkv key/value heads, K keys, D head dim, W window.

abar[b, s, j] is the attention of the query that predicts y_s (the row whose logits score y_s)
over history token j, averaged over all heads of the last L' layers:
  - encoder-decoder (T5, BART): decoder cross-attention, rows sum to 1 over the unpadded history;
  - decoder-only (Llama, SmolLM, GPT-2): self-attention restricted to the real history columns and
    renormalised; `history_mass` is the mass that was on the history before renormalising.

How: a function registered with transformers' AttentionInterface under "cagsr_capture" (with the
sdpa mask builder) replaces the model's attention for the duration of one call (tap.py). Every
layer still computes its output with SDPA; the captured layers additionally recompute softmax(QK^T)
for the query rows that predict response tokens only, block by block, sum over heads at once and
fold the block into a reducer (window.py). Nothing of size [L, B, H, T, T] is ever built, and the
model is restored on exit.

Either layout works: a padded TeacherForcedBatch (one pair per row) or a PackedBatch (several
pairs, or a whole dialogue, per row; packed.py). `QueryRoutes` says, for every captured query row
of the model's batch, which output row (view) and response step it feeds and which key column
stands behind each output history column, so abar comes back in the same per-pair layout.

Heads (heads.py): abar can average chosen `layer.head` pairs instead of the last layers, further abar
versions can come from other head sets in the same pass, and chosen heads can keep per-head statistics
(history and own-token mass, history entropy, first-token mass, strongest key) per response step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

from cagsr.attention.batch import TeacherForcedBatch, is_encoder_decoder, response_rows
from cagsr.attention.forward import Batch, forward_no_capture, view_masks
from cagsr.attention.heads import HeadReducer, HeadRequest, HeadStats, block_head_stats, check_heads
from cagsr.attention.packed import PackedBatch
from cagsr.attention.tap import TAPS, attention_modules, routed
from cagsr.attention.window import FullReducer, WindowReducer, prune_columns
from cagsr.errors import ConfigError

CAPTURE_NAME = "cagsr_capture"
# Largest transient block of attention scores, in elements ([B, H, blk, K] float32: 1 MiB). A block is
# also kept no larger than what the reducer keeps (but at least one row), so scores + probabilities
# of one block add at most ~2x the kept tensor: the capture's peak stays ~3x what it returns.
BLOCK_ELEMENTS = 1 << 18


def block_rows(b: int, h: int, s: int, k: int, kept_elements: int) -> int:
    """Query rows per block for [B, H, blk, K] scores, given the reducer's [B, S, C] size."""
    return min(s, max(1, min(BLOCK_ELEMENTS, kept_elements) // (b * h * k)))


@dataclass
class CaptureResult:
    """Outputs of the teacher-forced pass at the S response rows, plus the reduced attention."""

    logits: Tensor  # [R, S, V] logits that predict y_1..y_S
    hidden: Tensor  # [R, S, D] input of the LM head at the same rows (for a value head)
    abar: Tensor  # [R, S, N], [R, S, N'] pruned, or [R, S, W+1] windowed (column 0 = older tokens)
    history_mass: Tensor  # [R, S] mass on the history before renormalising (1 for enc-dec, 0 on pad rows)
    kept_index: Tensor | None  # [R, N'] / [R, W] history positions of the kept columns (-1 = none)
    head_stats: HeadStats | None = None  # per-head statistics of HeadRequest.features (heads.py)
    extra_abar: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)  # name -> (abar, history_mass)


@dataclass(kw_only=True)
class QueryRoutes:
    """Which query rows of the model's batch (B rows) are captured, and where each one goes.

    Q query slots per row; R output rows (views) with N history columns."""

    positions: Tensor
    """[B, Q] long: the query row (sequence position) of each slot."""
    view: Tensor
    """[B, Q] long: the output row each slot feeds (-1: unused slot)."""
    step: Tensor
    """[B, Q] long: the response step s it feeds."""
    key_of_column: Tensor
    """[R, N] long: the key column behind each output history column (-1: none)."""


def padded_routes(model: nn.Module, batch: TeacherForcedBatch) -> QueryRoutes:
    """One pair per row: row b's response rows feed view b, history column c is key column c."""
    rows = response_rows(model, batch)  # [S]
    b, s = batch.response_ids.shape[0], rows.numel()
    arange_b = torch.arange(b, device=rows.device)
    return QueryRoutes(
        positions=rows.expand(b, s),
        view=arange_b[:, None].expand(b, s),
        step=torch.arange(s, device=rows.device).expand(b, s),
        key_of_column=torch.arange(batch.n_history, device=rows.device).expand(b, -1),
    )


def packed_routes(batch: PackedBatch) -> QueryRoutes:
    """Each row's query slots are the response-predicting positions of the views it holds."""
    flat, valid = batch.response_positions()  # [R, S]
    width = batch.input_ids.shape[1]
    rows, views, steps = batch.view_row[:, None].expand_as(flat)[valid], *valid.nonzero(as_tuple=True)
    per_row = torch.bincount(rows, minlength=batch.input_ids.shape[0])
    q = int(per_row.max())
    order = torch.argsort(rows, stable=True)
    rows, views, steps, columns = rows[order], views[order], steps[order], (flat[valid] % width)[order]
    slot = torch.arange(rows.numel(), device=rows.device) - (per_row.cumsum(0) - per_row)[rows]
    shape = (batch.input_ids.shape[0], q)
    out = QueryRoutes(
        positions=torch.zeros(shape, dtype=torch.long, device=rows.device),
        view=torch.full(shape, -1, dtype=torch.long, device=rows.device),
        step=torch.zeros(shape, dtype=torch.long, device=rows.device),
        key_of_column=batch.key_of_column(),
    )
    out.positions[rows, slot], out.view[rows, slot], out.step[rows, slot] = columns, views, steps
    return out


@dataclass
class _AbarTarget:
    """One abar version: a reducer and, per captured module, the heads it averages (None: all)."""

    reducer: FullReducer | WindowReducer
    heads: dict[nn.Module, Tensor | None]
    count: int = 0  # heads summed so far, over all captured layers


@dataclass
class _CaptureState:
    """What one forward pass collects from the captured attention modules."""

    routes: QueryRoutes
    targets: list[_AbarTarget]
    features: dict[nn.Module, tuple[Tensor, Tensor]] = field(default_factory=dict)  # heads, slots on F
    head_reducer: HeadReducer | None = None
    own_keys: bool = True  # decoder self-attention: the reply's own earlier tokens are keys
    calls: dict[nn.Module, int] = field(default_factory=dict)

    def observe(self, module: nn.Module, query: Tensor, key: Tensor, mask: Tensor | None, **kwargs) -> None:
        """Fold softmax rows of one layer into the reducers.

        query: [B, H, Q, D]; key: [B, Hkv, K, D]; mask: bool/additive [B|1, 1, Q|1, K] or None.
        """
        b, h, _, _ = query.shape
        k_len = key.shape[2]
        slots = self.routes.positions.shape[1]
        blk = block_rows(b, h, slots, k_len, min(t.reducer.sum.numel() for t in self.targets))
        causal = kwargs.get("is_causal")
        causal = getattr(module, "is_causal", False) if causal is None else causal
        keys_t = key.float().transpose(-1, -2)  # [B, Hkv, D, K]
        targets = [t for t in self.targets if module in t.heads]
        chosen = [t.heads[module] for t in targets] + ([self.features[module][0]] if module in self.features else [])
        if any(idx is not None and int(idx.max()) >= h for idx in chosen):
            raise ConfigError(f"attention heads: a chosen head is outside the model ({h} heads per layer)")
        for target in targets:
            target.count += h if target.heads[module] is None else target.heads[module].numel()
        for start in range(0, slots, blk):
            part = slice(start, start + blk)
            probs = _softmax_rows(query, keys_t, mask, self.routes.positions[:, part], causal, **kwargs)
            for target in targets:
                heads = target.heads[module]
                self._route(target.reducer, (probs if heads is None else probs[:, heads]).sum(1), part)
            if module in self.features:
                self._head_stats(probs, *self.features[module], part)
        self.calls[module] = self.calls.get(module, 0) + 1

    def _route(self, reducer: FullReducer | WindowReducer, probs: Tensor, part: slice) -> None:
        """probs [B, blk, K] -> the reducer's rows, over the output history columns."""
        view = self.routes.view[:, part]
        used = view >= 0
        views, steps = view[used], self.routes.step[:, part][used]  # [M]
        columns = self.routes.key_of_column[views]  # [M, N]
        picked = probs[used].gather(1, columns.clamp(min=0)) * (columns >= 0)
        reducer.add(views, steps, picked)

    def _head_stats(self, probs: Tensor, heads: Tensor, slots: Tensor, part: slice) -> None:
        """probs [B, H, blk, K] -> per-head statistics of the selected heads of this layer."""
        view = self.routes.view[:, part]
        used = view >= 0
        views, steps = view[used], self.routes.step[:, part][used]  # [M]
        position = self.routes.positions[:, part][used]  # [M]
        rows = probs[:, heads].transpose(1, 2)[used]  # [M, f, K]
        keys = torch.arange(rows.shape[-1], device=rows.device)
        own = (keys > (position - steps)[:, None]) & (keys <= position[:, None]) & self.own_keys  # [M, K]
        reducer = self.head_reducer
        stats, top = block_head_stats(rows, self.routes.key_of_column[views], reducer.history_mask[views],
                                      reducer.first[views], own)
        reducer.add(views, steps, slots, stats, top)


def _gather_rows(t: Tensor, positions: Tensor, q_len: int) -> Tensor:
    """[B|1, C, Q|1, K] -> [B, C, r, K] (or broadcastable): each batch row's query rows `positions` [B, r]."""
    if t.shape[2] != q_len or q_len == 1:
        return t
    b, r = positions.shape
    full = t.expand(b, -1, -1, -1)
    index = positions[:, None, :, None].expand(b, full.shape[1], r, full.shape[3])
    return full.gather(2, index)


def _softmax_rows(
    query: Tensor,
    keys_t: Tensor,
    mask: Tensor | None,
    positions: Tensor,
    causal: bool,
    scaling: float | None = None,
    position_bias: Tensor | None = None,
    softcap: float | None = None,
    **_,
) -> Tensor:
    """Eager attention probabilities for the query rows `positions` [B, r] of each batch row only.

    query: [B, H, Q, D]; keys_t: [B, Hkv, D, K] float32 -> [B, H, r, K] float32.
    GQA: query heads are grouped by kv head (as repeat_kv lays them out), so the matmul runs per
    kv head without repeating the keys.
    """
    b, h, q_len, d = query.shape
    hkv, k_len = keys_t.shape[1], keys_t.shape[-1]
    r = positions.shape[1]
    q = query.gather(2, positions[:, None, :, None].expand(b, h, r, d))
    q = q.float().reshape(b, hkv, (h // hkv) * r, d)
    # In place from here on: this runs under no_grad and only one block is alive at a time.
    scores = (q @ keys_t).view(b, h, r, k_len)
    scores.mul_(d**-0.5 if scaling is None else scaling)
    if softcap is not None:
        scores.div_(softcap).tanh_().mul_(softcap)
    if position_bias is not None:
        scores.add_(_gather_rows(position_bias, positions, q_len))
    if mask is not None:
        m = _gather_rows(mask, positions, q_len)
        if m.dtype == torch.bool:
            scores.masked_fill_(~m, torch.finfo(scores.dtype).min)
        else:
            scores.add_(m)
    elif causal and q_len > 1:
        # No mask given means sdpa's is_causal path: keys up to the query's own position.
        allowed = torch.arange(k_len, device=positions.device) <= (positions[..., None] + k_len - q_len)
        scores.masked_fill_(~allowed[:, None], torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1)


def _capture_attention(module, query, key, value, attention_mask, **kwargs):
    """AttentionInterface function: SDPA for the output; captured modules also fold their rows."""
    out = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    observe = TAPS.get(module)
    if observe is not None:
        with torch.no_grad():  # abar feeds a reward: never part of the graph
            observe(module, query, key, attention_mask, **kwargs)
    return out


AttentionInterface.register(CAPTURE_NAME, _capture_attention)
AttentionMaskInterface.register(CAPTURE_NAME, sdpa_mask)


def forward_with_capture(
    model: nn.Module,
    batch: Batch,
    last_layers: int = 1,
    window: int | None = None,
    prune_above: int | None = None,
    prune_keep: Tensor | None = None,
    prune_threshold: float = 1e-3,
    heads: HeadRequest | None = None,
) -> CaptureResult:
    """Teacher-forced pass that also returns abar over each pair's history (see module docstring).

    batch: a padded TeacherForcedBatch (history [R, N], response [R, S]) or a PackedBatch (R views).
    window=W keeps [R, S, W+1] (column 0 = summed mass on older tokens). prune_above=P with
    prune_keep [R, N] bool drops, in views with more than P history tokens, columns that are not
    salient and whose max over s of abar is below prune_threshold. heads: abar from chosen heads
    instead of the last layers, per-head statistics of chosen heads, further abar versions (heads.py).
    """
    enc_dec = is_encoder_decoder(model)
    modules = attention_modules(model, cross=enc_dec)
    if not 1 <= last_layers <= len(modules):
        raise ValueError(f"last_layers must be in 1..{len(modules)}, got {last_layers}")
    request = heads or HeadRequest()
    check_heads([(layer, 0) for layer in request.layers()], len(modules))
    history_mask, response_mask = view_masks(batch)
    s = response_mask.shape[1]

    def reducer() -> FullReducer | WindowReducer:
        return FullReducer(history_mask, s) if window is None else WindowReducer(history_mask, s, window)

    main = _AbarTarget(reducer(), _layer_heads(modules, request.abar, history_mask.device)
                       if request.abar is not None else dict.fromkeys(modules[-last_layers:]))
    extras = {name: _AbarTarget(reducer(), _layer_heads(modules, hs, history_mask.device))
              for name, hs in request.extra_abar.items()}
    routes = packed_routes(batch) if isinstance(batch, PackedBatch) else padded_routes(model, batch)
    state = _CaptureState(routes, [main, *extras.values()], own_keys=not enc_dec)
    if request.features:
        state.head_reducer = HeadReducer(request.features, history_mask, s)
        state.features = _feature_slots(modules, request.features, history_mask.device)
    tapped = {m for t in state.targets for m in t.heads} | set(state.features)
    with routed(model, CAPTURE_NAME, dict.fromkeys(tapped, state.observe)):
        logits, hidden = forward_no_capture(model, batch)
    if any(state.calls.get(m) != 1 for m in tapped):
        raise RuntimeError(
            f"{type(model).__name__}: captured attention modules were not each called once "
            "(does the model route attention through transformers' AttentionInterface?)"
        )
    abar, mass = _finish(main.reducer, main.count, response_mask, renormalise=not enc_dec)
    kept_index = main.reducer.kept_index
    if prune_above is not None:
        abar, kept_index = _prune(abar, kept_index, history_mask, prune_above, prune_keep, prune_threshold)
    extra = {name: _finish(t.reducer, t.count, response_mask, renormalise=not enc_dec) for name, t in extras.items()}
    stats = state.head_reducer.finish(response_mask) if state.head_reducer is not None else None
    return CaptureResult(logits, hidden, abar, mass, kept_index, stats, extra)


def _layer_heads(modules: list[nn.Module], heads, device) -> dict[nn.Module, Tensor]:
    """(layer, head) pairs -> per module the [h'] long index of its heads."""
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)
    return {modules[layer]: torch.tensor(hs, dtype=torch.long, device=device) for layer, hs in by_layer.items()}


def _feature_slots(modules: list[nn.Module], heads, device) -> dict[nn.Module, tuple[Tensor, Tensor]]:
    """Per module: the [f] heads it contributes and their [f] positions on the F axis of HeadStats."""
    by_layer: dict[int, list[tuple[int, int]]] = {}
    for slot, (layer, head) in enumerate(heads):
        by_layer.setdefault(layer, []).append((head, slot))
    return {modules[layer]: tuple(torch.tensor(col, dtype=torch.long, device=device) for col in zip(*pairs, strict=True))
            for layer, pairs in by_layer.items()}


def _finish(
    reducer: FullReducer | WindowReducer, heads: int, response_mask: Tensor, renormalise: bool
) -> tuple[Tensor, Tensor]:
    """Head/layer sums -> means; renormalise over the history (decoder-only); zero padded rows.

    Returns abar [B, S, C] and history_mass [B, S].
    """
    valid = response_mask.to(reducer.sum.dtype)  # [B, S]
    total = reducer.sum / heads
    mass = reducer.mass / heads
    if renormalise:
        abar = total / mass.clamp_min(torch.finfo(mass.dtype).tiny)[..., None]
        return abar * valid[..., None], mass * valid
    return total * valid[..., None], valid.clone()


def _prune(
    abar: Tensor,
    kept_index: Tensor | None,
    history_mask: Tensor,
    prune_above: int,
    prune_keep: Tensor | None,
    threshold: float,
) -> tuple[Tensor, Tensor | None]:
    """Apply prune_columns to the full-resolution columns (all history, or the window's W)."""
    count = history_mask.sum(-1)  # [B]
    if not bool((count > prune_above).any()):
        return abar, kept_index
    if prune_keep is None:
        raise ValueError("prune_above needs prune_keep: [B, N] bool of salient history tokens")
    if kept_index is None:
        index = torch.where(history_mask, torch.arange(history_mask.shape[1], device=abar.device), -1)
        return prune_columns(abar, index, prune_keep, count, prune_above, threshold)
    # Windowed: keep the summary bucket, prune among the W recent columns.
    keep = prune_keep.bool().gather(1, kept_index.clamp(min=0)) & (kept_index >= 0)
    recent, new_index = prune_columns(abar[..., 1:], kept_index, keep, count, prune_above, threshold)
    return torch.cat([abar[..., :1], recent], dim=-1), new_index
