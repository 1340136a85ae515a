"""Exact, cheap attention capture inside one teacher-forced forward pass.

Shapes: B batch, S response tokens, N history tokens, T = N + S, L layers, H query heads,
Hkv key/value heads, K keys, D head dim, W window.

abar[b, s, j] is the attention of the query that predicts y_s (the row whose logits score y_s)
over history token j, averaged over all heads of the last L' layers:
  - encoder-decoder (T5, BART): decoder cross-attention, rows sum to 1 over the unpadded history;
  - decoder-only (Llama, SmolLM, GPT-2): self-attention restricted to the real history columns and
    renormalised; `history_mass` is the mass that was on the history before renormalising.

How: a function registered with transformers' AttentionInterface under "cagsr_capture" (with the
sdpa mask builder) replaces the model's attention for the duration of one call. Every layer still
computes its output with SDPA; the captured layers additionally recompute softmax(QK^T) for the S
response query rows only, block by block, sum over heads at once and fold the block into a reducer
(window.py). Nothing of size [L, B, H, T, T] is ever built, and the model is restored on exit.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from transformers import AttentionInterface, AttentionMaskInterface, PreTrainedConfig
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

from cagsr.attention.batch import TeacherForcedBatch, is_encoder_decoder, model_inputs, response_rows
from cagsr.attention.window import FullReducer, WindowReducer, prune_columns

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

    logits: Tensor  # [B, S, V] logits that predict y_1..y_S
    hidden: Tensor  # [B, S, D] input of the LM head at the same rows (for a value head)
    abar: Tensor  # [B, S, N], [B, S, N'] pruned, or [B, S, W+1] windowed (column 0 = older tokens)
    history_mass: Tensor  # [B, S] mass on the history before renormalising (1 for enc-dec, 0 on pad rows)
    kept_index: Tensor | None  # [B, N'] / [B, W] history positions of the kept columns (-1 = none)


@dataclass
class _CaptureState:
    """What one forward pass collects from the captured attention modules."""

    rows: Tensor  # [S] query rows that predict y_1..y_S
    n_history: int  # history keys are columns 0..N-1
    reducer: FullReducer | WindowReducer
    calls: dict[nn.Module, int] = field(default_factory=dict)
    heads: int = 0  # heads summed so far, over all captured layers

    def observe(self, module: nn.Module, query: Tensor, key: Tensor, mask: Tensor | None, **kwargs) -> None:
        """Fold softmax rows of one layer into the reducer.

        query: [B, H, Q, D]; key: [B, Hkv, K, D]; mask: bool/additive [B|1, 1, Q|1, K] or None.
        """
        b, h, q_len, _ = query.shape
        k_len = key.shape[2]
        blk = block_rows(b, h, self.rows.numel(), k_len, self.reducer.sum.numel())
        causal = kwargs.get("is_causal")
        causal = getattr(module, "is_causal", False) if causal is None else causal
        keys_t = key.float().transpose(-1, -2)  # [B, Hkv, D, K]
        for start in range(0, self.rows.numel(), blk):
            rows = self.rows[start : start + blk]
            probs = _softmax_rows(query, keys_t, mask, rows, causal, **kwargs)  # [B, H, blk, K]
            self.reducer.add(slice(start, start + rows.numel()), probs.sum(1)[..., : self.n_history])
        self.heads += h
        self.calls[module] = self.calls.get(module, 0) + 1


def _softmax_rows(
    query: Tensor,
    keys_t: Tensor,
    mask: Tensor | None,
    rows: Tensor,
    causal: bool,
    scaling: float | None = None,
    position_bias: Tensor | None = None,
    softcap: float | None = None,
    **_,
) -> Tensor:
    """Eager attention probabilities for query rows `rows` only.

    query: [B, H, Q, D]; keys_t: [B, Hkv, D, K] float32; rows: [r] -> [B, H, r, K] float32.
    GQA: query heads are grouped by kv head (as repeat_kv lays them out), so the matmul runs per
    kv head without repeating the keys.
    """
    b, h, q_len, d = query.shape
    hkv, k_len = keys_t.shape[1], keys_t.shape[-1]
    q = query[:, :, rows].float().reshape(b, hkv, (h // hkv) * rows.numel(), d)
    # In place from here on: this runs under no_grad and only one block is alive at a time.
    scores = (q @ keys_t).view(b, h, rows.numel(), k_len)
    scores.mul_(d**-0.5 if scaling is None else scaling)
    if softcap is not None:
        scores.div_(softcap).tanh_().mul_(softcap)
    if position_bias is not None:
        scores.add_(_rows_of(position_bias, rows, q_len))
    if mask is not None:
        m = _rows_of(mask, rows, q_len)
        if m.dtype == torch.bool:
            scores.masked_fill_(~m, torch.finfo(scores.dtype).min)
        else:
            scores.add_(m)
    elif causal and q_len > 1:
        # No mask given means sdpa's is_causal path: keys up to the query's own position.
        allowed = torch.arange(k_len, device=rows.device) <= (rows[:, None] + k_len - q_len)
        scores.masked_fill_(~allowed, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1)


def _rows_of(t: Tensor, rows: Tensor, q_len: int) -> Tensor:
    """[., ., Q|1, K] -> [., ., r|1, K]: pick query rows unless the tensor broadcasts over them."""
    return t[:, :, rows] if t.shape[2] == q_len and q_len > 1 else t


_ACTIVE: dict[nn.Module, _CaptureState] = {}


def _capture_attention(module, query, key, value, attention_mask, **kwargs):
    """AttentionInterface function: SDPA for the output; captured modules also fold their rows."""
    out = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    state = _ACTIVE.get(module)
    if state is not None:
        with torch.no_grad():  # abar feeds a reward: never part of the graph
            state.observe(module, query, key, attention_mask, **kwargs)
    return out


AttentionInterface.register(CAPTURE_NAME, _capture_attention)
AttentionMaskInterface.register(CAPTURE_NAME, sdpa_mask)


def _is_cross(name: str, module: nn.Module) -> bool:
    leaf = name.rsplit(".", 1)[-1].lower()
    return bool(getattr(module, "is_cross_attention", False)) or any(
        tag in leaf for tag in ("cross", "encdec", "encoder_attn")
    )


def attention_modules(model: nn.Module, cross: bool) -> list[nn.Module]:
    """The innermost attention modules in layer order: cross-attention or (decoder) self-attention."""
    found = []
    for name, module in model.named_modules():
        if not type(module).__name__.endswith("Attention"):
            continue
        if any(type(c).__name__.endswith("Attention") for c in module.children()):
            continue  # a wrapper such as T5LayerSelfAttention; its child does the work
        if _is_cross(name, module) == cross and (cross or ".encoder." not in f".{name}."):
            found.append(module)
    if not found:
        raise ValueError(
            f"no {'cross' if cross else 'self'}-attention modules found in {type(model).__name__}"
        )
    return found


def model_configs(model: nn.Module) -> list[PreTrainedConfig]:
    """Every distinct config the model's modules read (T5 deep-copies one per stack)."""
    seen: dict[int, PreTrainedConfig] = {}
    for module in model.modules():
        cfg = getattr(module, "config", None)
        if isinstance(cfg, PreTrainedConfig):
            seen.setdefault(id(cfg), cfg)
    return list(seen.values())


@contextmanager
def attn_implementation(model: nn.Module, name: str) -> Iterator[None]:
    """Switch every config of the model to attention `name`; restore each one on exit.

    Set directly on each config because set_attn_implementation skips sub-models whose config has
    the model's own class (T5's encoder and decoder stacks keep the old implementation).
    """
    configs = model_configs(model)
    previous = [cfg._attn_implementation_internal for cfg in configs]
    try:
        for cfg in configs:
            cfg._attn_implementation_internal = name
        yield
    finally:
        for cfg, impl in zip(configs, previous, strict=True):
            cfg._attn_implementation_internal = impl


@contextmanager
def capturing(model: nn.Module, modules: list[nn.Module], state: _CaptureState) -> Iterator[_CaptureState]:
    """Route all attention through the capture function, `modules` folding into `state`."""
    try:
        with attn_implementation(model, CAPTURE_NAME):
            _ACTIVE.update(dict.fromkeys(modules, state))
            yield state
    finally:
        for module in modules:
            _ACTIVE.pop(module, None)


def _accepts(model: nn.Module, name: str) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT wrapper
    return name in inspect.signature(base.forward).parameters


def _run(model: nn.Module, batch: TeacherForcedBatch) -> tuple[Tensor, Tensor]:
    """One teacher-forced pass -> logits [B, S, V] and LM-head input [B, S, D] at the response rows."""
    rows = response_rows(model, batch)
    kwargs = model_inputs(model, batch)
    if not is_encoder_decoder(model) and _accepts(model, "logits_to_keep"):
        kwargs["logits_to_keep"] = rows  # the head runs on S rows, never [B, T, V]
    grabbed: list[Tensor] = []
    handle = model.get_output_embeddings().register_forward_pre_hook(lambda _m, args: grabbed.append(args[0]))
    try:
        out = model(**kwargs, use_cache=False)
    finally:
        handle.remove()
    logits, hidden = out.logits, grabbed[-1]
    if logits.shape[1] != rows.numel():
        logits = logits[:, rows]
    if hidden.shape[1] != rows.numel():
        hidden = hidden[:, rows]
    return logits, hidden


def forward_no_capture(model: nn.Module, batch: TeacherForcedBatch) -> tuple[Tensor, Tensor]:
    """The same pass with the model's own attention (SDPA by default): logits [B, S, V], hidden [B, S, D]."""
    return _run(model, batch)


def forward_with_capture(
    model: nn.Module,
    batch: TeacherForcedBatch,
    last_layers: int = 1,
    window: int | None = None,
    prune_above: int | None = None,
    prune_keep: Tensor | None = None,
    prune_threshold: float = 1e-3,
) -> CaptureResult:
    """Teacher-forced pass that also returns abar over the history (see module docstring).

    batch: history [B, N], response [B, S]. window=W keeps [B, S, W+1] (column 0 = summed mass on
    older tokens). prune_above=P with prune_keep [B, N] bool drops, in rows with more than P history
    tokens, columns that are not salient and whose max over s of abar is below prune_threshold.
    """
    enc_dec = is_encoder_decoder(model)
    modules = attention_modules(model, cross=enc_dec)
    if not 1 <= last_layers <= len(modules):
        raise ValueError(f"last_layers must be in 1..{len(modules)}, got {last_layers}")
    modules = modules[-last_layers:]
    hist_mask = batch.history_mask
    s = batch.n_response
    reducer = FullReducer(hist_mask, s) if window is None else WindowReducer(hist_mask, s, window)
    state = _CaptureState(response_rows(model, batch), batch.n_history, reducer)
    with capturing(model, modules, state):
        logits, hidden = _run(model, batch)
    if any(state.calls.get(m) != 1 for m in modules):
        raise RuntimeError(
            f"{type(model).__name__}: captured attention modules were not each called once "
            "(does the model route attention through transformers' AttentionInterface?)"
        )
    abar, mass = _finish(reducer, state.heads, batch.response_mask, renormalise=not enc_dec)
    kept_index = reducer.kept_index
    if prune_above is not None:
        abar, kept_index = _prune(abar, kept_index, batch, prune_above, prune_keep, prune_threshold)
    return CaptureResult(logits, hidden, abar, mass, kept_index)


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
    batch: TeacherForcedBatch,
    prune_above: int,
    prune_keep: Tensor | None,
    threshold: float,
) -> tuple[Tensor, Tensor | None]:
    """Apply prune_columns to the full-resolution columns (all history, or the window's W)."""
    count = batch.history_mask.sum(-1)  # [B]
    if not bool((count > prune_above).any()):
        return abar, kept_index
    if prune_keep is None:
        raise ValueError("prune_above needs prune_keep: [B, N] bool of salient history tokens")
    if kept_index is None:
        index = torch.where(batch.history_mask, torch.arange(batch.n_history, device=abar.device), -1)
        return prune_columns(abar, index, prune_keep, count, prune_above, threshold)
    # Windowed: keep the summary bucket, prune among the W recent columns.
    keep = prune_keep.bool().gather(1, kept_index.clamp(min=0)) & (kept_index >= 0)
    recent, new_index = prune_columns(abar[..., 1:], kept_index, keep, count, prune_above, threshold)
    return torch.cat([abar[..., :1], recent], dim=-1), new_index
