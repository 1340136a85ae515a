"""The lean engine: batched prefill, one static KV cache, K candidates sharing their prompt's cache.

    .venv/bin/python -m pytest tests/rollout/test_engines_lean.py
    engine = LeanEngine(loaded, capture_layers=1)
    out = engine.generate(prompts, SamplingConfig(), seed=0, sessions=episode_ids, candidates=4)

Shapes: B prompts, K candidates, R = B*K rows, C reused (cached) prefix columns, Q new prompt columns,
P = C + Q prompt columns, S new tokens, V vocabulary, L layers, H query heads, Hkv key/value heads.

Decoder-only models (Llama-style: llama, mistral, qwen2, qwen3) run their own decoder layers over a
StaticKV (kv.py): one [L, 2, R, Hkv, P + S, D] buffer per call, written in place, with explicit
position ids and a boolean mask, so nothing is re-allocated or re-laid-out per step. The prompt is
prefilled once (only its last row goes through the LM head), then its K/V are copied to the K
candidate rows. With `sessions`, a prompt that extends what an episode's previous call fed to the
model prefills only its new tokens (see kv.py). Sampling follows transformers exactly (sampling.py).

`capture_layers=L'` also returns, per completion, the attention of every response query row over the
prompt (mean over the H heads of the last L' layers, renormalised over the history), taken from the
decoding pass itself: the row that predicts y_s is the query of y_{s-1}, which decoding computes
anyway, so the capture costs one extra softmax row per step instead of a teacher-forced pass. It
equals forward_with_capture's abar up to float rounding (tests/rollout/test_engines_lean.py).

Encoder-decoder models (T5) go through lean_t5.py.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import AttentionInterface

from cagsr.attention.tap import TAPS, routed
from cagsr.models.registry import LoadedModel
from cagsr.rollout.engines.base import Completion, SamplingConfig
from cagsr.rollout.engines.hf import split_completion
from cagsr.rollout.engines.kv import CachedRow, Sessions, StaticKV, copy_prefix
from cagsr.rollout.engines.onednn import fast_no_grad, onednn_available
from cagsr.rollout.engines.sampling import choose, make_generator, token_logprobs
from cagsr.utils.modules import unwrap_peft

LEAN_ATTENTION = "cagsr_lean"
DECODER_TYPES = ("llama", "mistral", "qwen2", "qwen3")


@dataclass
class CapturedCompletion(Completion):
    """A completion with the attention captured while it was generated (capture_layers > 0)."""

    abar: Tensor | None = None
    """[S, N] attention of the query predicting y_s over the N prompt tokens; rows sum to 1."""
    history_mass: Tensor | None = None
    """[S] attention mass on the prompt before renormalising (1 for encoder-decoder models)."""


class FusedCapture:
    """Sums softmax rows of the captured layers over the prompt columns, one response row per step.

    sum [R, S, P]: for response row s, attention of its query over prompt columns, summed over heads and
    captured layers. The engine sets `rows` (which cache rows the current forward computes) and `step`.
    """

    def __init__(self, rows: int, steps: int, prompt_columns: int, heads: int, device) -> None:
        self.sum = torch.zeros(rows, steps, prompt_columns, device=device)
        self.heads = heads
        self.rows: slice = slice(None)
        self.step = 0

    def __call__(self, query: Tensor, key: Tensor, mask: Tensor | None, scaling: float | None,
                 position_bias: Tensor | None = None) -> None:  # fmt: skip
        """query [R', H, Q, D] (its last row is the response row), key [R', Hkv, T, D], mask [R', 1, Q|1, T]
        (bool, additive or None), position_bias [R'|1, H, Q, T] (T5)."""
        q = query[:, :, -1].float()  # [R', H, D]
        r, h, d = q.shape
        hkv, t, p = key.shape[1], key.shape[2], self.sum.shape[-1]
        scores = q.view(r, hkv, h // hkv, d) @ key.float().transpose(-1, -2)  # [R', Hkv, H/Hkv, T]
        scores = scores * (d**-0.5 if scaling is None else scaling)
        if position_bias is not None:
            scores = scores + position_bias[:, :, -1].float().view(-1, hkv, h // hkv, t)
        allowed = torch.ones(r, t, dtype=torch.bool, device=q.device) if mask is None else mask[:, 0, -1]
        if allowed.dtype != torch.bool:  # additive mask
            scores = scores + allowed.float()[:, None, None]
            allowed = allowed > torch.finfo(allowed.dtype).min / 2
        probs = scores.masked_fill(~allowed[:, None, None], -float("inf")).softmax(-1).sum((1, 2))
        self.sum[self.rows, self.step] += probs[:, :p] * allowed[:, :p]

    def finish(self, row: int, steps: int, prompt_columns: Tensor) -> tuple[Tensor, Tensor]:
        """-> (abar [steps, N], history_mass [steps]) for one row, over its N real prompt columns."""
        total = self.sum[row, :steps].index_select(-1, prompt_columns)
        mass = total.sum(-1)
        return total / mass.clamp_min(torch.finfo(mass.dtype).tiny)[:, None], mass / self.heads




def _lean_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """SDPA with the engine's boolean mask; GQA without repeating K/V; taps for fused capture."""
    tap = TAPS.get(module)
    if tap is not None:
        tap(query, key, attention_mask, scaling)
    gqa = query.shape[1] != key.shape[1]
    out = F.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, scale=scaling, enable_gqa=gqa
    )
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(LEAN_ATTENTION, _lean_attention)


def self_attention_modules(model: nn.Module) -> list[nn.Module]:
    """The decoder's self-attention modules in layer order (the ones forward_with_capture reads)."""
    return [layer.self_attn for layer in model.model.layers]


def completions(tokens: Tensor, logps: Tensor, capture: FusedCapture | None, prompt_columns: list[Tensor],
                k: int, eos: int, pad: int) -> list[list[Completion]]:  # fmt: skip
    """tokens, logps [R, S'] -> B lists of K completions, cut after the end token, with their capture."""
    out: list[Completion] = []
    for r, (row, lp) in enumerate(zip(tokens.tolist(), logps.tolist(), strict=True)):
        done = split_completion(row, eos, pad)
        n = len(done.token_ids)
        if capture is None:
            out.append(Completion(done.token_ids, done.finished, lp[:n]))
        else:
            abar, mass = capture.finish(r, n, prompt_columns[r])
            out.append(CapturedCompletion(done.token_ids, done.finished, lp[:n], abar, mass))
    return [out[b * k : (b + 1) * k] for b in range(len(out) // k)]


class LeanEngine:
    """Static-cache generation for Llama-style decoders and T5; optional fused attention capture."""

    name = "lean"

    def __init__(self, loaded: LoadedModel, capture_layers: int = 0, onednn: bool | None = None) -> None:
        """capture_layers: capture attention of the last L' layers while decoding (0: off).
        onednn: run Linear layers with oneDNN-layout weights (None: wherever available, i.e. fp32 CPU)."""
        if not self.supports(loaded):
            raise ValueError(f"lean engine: unsupported model type {loaded.model.config.model_type!r}")
        self.loaded = loaded
        self.capture_layers = capture_layers
        self.onednn = onednn
        self.sessions = Sessions()
        self.last_stats: dict[str, int] = {}
        """prompt_tokens, reused_tokens and prefill_columns (B x new columns) of the last call."""

    @staticmethod
    def supports(loaded: LoadedModel) -> bool:
        model_type = getattr(loaded.model.config, "model_type", "")
        return model_type == "t5" if loaded.is_encoder_decoder else model_type in DECODER_TYPES

    def sync_weights(self) -> None:
        """The engine runs the policy's own modules; only cached K/V from the old weights must go."""
        self.sessions.clear()

    def end_session(self, key: Hashable) -> None:
        """Free the K/V kept for an episode that has ended."""
        self.sessions.drop(key)

    @torch.no_grad()
    def generate(
        self,
        prompts: list[list[int]],
        sampling: SamplingConfig,
        seed: int | None = None,
        sessions: Sequence[Hashable | None] | None = None,
        *,
        candidates: int = 1,
    ) -> list[list[Completion]]:
        """B prompts -> B lists of K = `candidates` completions; `sessions[b]` names prompt b's episode
        (None: no reuse)."""
        if any(not p for p in prompts):
            raise ValueError("lean engine: every prompt needs at least one token")
        keys = list(sessions) if sessions is not None else [None] * len(prompts)
        named = [k for k in keys if k is not None]
        if len(keys) != len(prompts) or len(set(named)) != len(named):
            raise ValueError("sessions: one key per prompt, no key used twice in one call")
        model = self.loaded.model
        was_training = model.training
        model.eval()
        try:
            if self.loaded.is_encoder_decoder:
                from cagsr.rollout.engines.lean_t5 import generate_seq2seq

                return generate_seq2seq(self.loaded, prompts, sampling, seed, self.capture_layers,
                                        self._onednn(unwrap_peft(model)), candidates)  # fmt: skip
            return self._generate_decoder(prompts, sampling, seed, keys, candidates)
        finally:
            model.train(was_training)

    def onednn_inference(self):
        """Context: no-grad forwards of the policy (e.g. the capture pass) run with the oneDNN weights too."""
        return self._onednn(unwrap_peft(self.loaded.model))

    def _onednn(self, model: nn.Module):
        """Context running the model's plain Linear layers with oneDNN weights, or a no-op."""
        param = next(model.parameters())
        if self.onednn is True and not onednn_available(param.device, param.dtype):
            raise ValueError("lean engine: onednn=True needs an fp32 CPU model and oneDNN")
        return fast_no_grad(model, enabled=self.onednn is not False)

    def _generate_decoder(self, prompts, sampling: SamplingConfig, seed, keys, k: int) -> list[list[Completion]]:
        model, steps = unwrap_peft(self.loaded.model), sampling.max_new_tokens
        cache, ids, pos, prompt_columns = self._layout(model, prompts, keys, k, steps)
        p = cache.end  # prompt columns: reused prefix + new tokens
        capture, taps = None, {}
        if self.capture_layers:
            modules = self_attention_modules(model)[-self.capture_layers :]
            heads = model.config.num_attention_heads * len(modules)
            capture = FusedCapture(cache.valid.shape[0], steps, p, heads, cache.kv.device)
            taps = dict.fromkeys(modules, capture)
        with routed(model, LEAN_ATTENTION, taps), self._onednn(model):
            logits = self._prefill(model, cache, ids, pos, k, capture)
            tokens, logps, fed = self._decode(model, cache, logits, pos[:, -1].repeat_interleave(k) + 1, p, sampling,
                                              make_generator(seed, cache.kv.device), capture)  # fmt: skip
        out = completions(tokens, logps, capture, prompt_columns, k, self.loaded.eos_token_id,
                          self.loaded.tokenizer.pad_token_id)  # fmt: skip
        for b, key in enumerate(keys):
            if key is not None:
                rows = [self._cached(prompts[b], c, cache, b * k + j, prompt_columns[b * k + j], p, fed)
                        for j, c in enumerate(out[b])]  # fmt: skip
                self.sessions.store(key, rows)
        return out

    def _layout(
        self, model: nn.Module, prompts, keys, k: int, steps: int
    ) -> tuple[StaticKV, Tensor, Tensor, list[Tensor]]:
        """Allocate the cache, copy reused prefixes in, and lay out the new prompt tokens.

        Returns cache (start/end set for the prefill), new ids [B, Q] and positions [B, Q] (left-padded),
        and each row's prompt columns (R tensors, time order).
        """
        pad = self.loaded.tokenizer.pad_token_id
        found = [self.sessions.lookup(key, prompt) for key, prompt in zip(keys, prompts, strict=True)]
        c = max(n for _, n in found)
        q = max(len(prompt) - n for prompt, (_, n) in zip(prompts, found, strict=True))
        cfg, param = model.config, next(model.parameters())
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        cache = StaticKV(len(model.model.layers), len(prompts) * k, cfg.num_key_value_heads, c + q + steps,
                         head_dim, param.dtype, param.device)  # fmt: skip
        ids = torch.full((len(prompts), q), pad, dtype=torch.long)
        pos = torch.zeros((len(prompts), q), dtype=torch.long)
        for b, (prompt, (row, n)) in enumerate(zip(prompts, found, strict=True)):
            if row is not None:
                copy_prefix(cache, b * k, c, row, n)
            new = prompt[n:]
            ids[b, q - len(new) :] = torch.tensor(new)
            pos[b, q - len(new) :] = torch.arange(n, len(prompt))
            cache.valid[b * k, c + q - len(new) : c + q] = True
        self.last_stats = {"prompt_tokens": sum(map(len, prompts)), "reused_tokens": sum(n for _, n in found),
                           "prefill_columns": len(prompts) * q}  # fmt: skip
        per_prompt = [cache.valid[b * k, : c + q].nonzero().squeeze(-1) for b in range(len(prompts))]
        prompt_columns = [cols for cols in per_prompt for _ in range(k)]
        cache.rows, cache.start, cache.end = slice(0, None, k), c, c + q
        return cache, ids.to(param.device), pos.to(param.device), prompt_columns

    @staticmethod
    def _forward(model: nn.Module, cache: StaticKV, ids: Tensor, pos: Tensor, mask: Tensor) -> Tensor:
        """ids, pos [R', Q]; mask [R', 1, Q, end] -> float32 logits [R', V] of the last column."""
        base = model.model
        h = base.embed_tokens(ids)
        pe = base.rotary_emb(h, pos)
        for layer in base.layers:
            h = layer(h, attention_mask=mask, position_ids=pos, past_key_values=cache, position_embeddings=pe)
            h = h[0] if isinstance(h, tuple) else h
        return model.get_output_embeddings()(base.norm(h[:, -1:]))[:, 0].float()

    def _prefill(
        self,
        model: nn.Module,
        cache: StaticKV,
        ids: Tensor,
        pos: Tensor,
        k: int,
        capture: FusedCapture | None,
    ) -> Tensor:
        """Prefill the new prompt columns of one row per prompt -> logits [R, V] (repeated K times)."""
        c, q = cache.start, ids.shape[1]
        cols = torch.arange(c + q, device=ids.device)
        query_cols = c + torch.arange(q, device=ids.device)
        causal = cols[None, :] <= query_cols[:, None]  # [Q, P]
        own = cols[None, :] == query_cols[:, None]  # padding queries see themselves: no empty softmax rows
        mask = ((cache.valid[cache.rows, : c + q][:, None, :] & causal) | own)[:, None]  # [B, 1, Q, P]
        if capture is not None:
            capture.rows, capture.step = cache.rows, 0
        logits = self._forward(model, cache, ids, pos, mask)
        cache.broadcast_prompts(k, c + q)  # the K candidates start from their prompt's K/V: no K-fold prefill
        if capture is not None and k > 1:
            view = capture.sum.view(-1, k, *capture.sum.shape[1:])
            view[:, 1:, 0] = view[:, :1, 0]
        return logits.repeat_interleave(k, 0)

    def _decode(self, model: nn.Module, cache: StaticKV, logits: Tensor, pos: Tensor, p: int, sampling: SamplingConfig,
                generator, capture: FusedCapture | None) -> tuple[Tensor, Tensor, int]:  # fmt: skip
        """Sample S tokens for all R rows -> (tokens [R, S'], raw log-probs [R, S'], tokens fed to the model)."""
        eos, pad = self.loaded.eos_token_id, self.loaded.tokenizer.pad_token_id
        r, steps = logits.shape[0], sampling.max_new_tokens
        tokens = torch.full((r, steps), pad, dtype=torch.long, device=logits.device)
        logps = torch.zeros((r, steps), device=logits.device)
        done = torch.zeros(r, dtype=torch.bool, device=logits.device)
        cache.rows = slice(None)
        if capture is not None:
            capture.rows = slice(None)
        for s in range(steps):
            nxt = choose(logits, sampling, generator)
            logps[:, s] = token_logprobs(logits, nxt)
            nxt = nxt.masked_fill(done, pad)  # finished rows emit padding, as transformers does
            tokens[:, s] = nxt
            done |= nxt == eos
            if s == steps - 1 or bool(done.all()):
                return tokens[:, : s + 1], logps[:, : s + 1], s
            col = p + s
            cache.valid[:, col] = True
            cache.start, cache.end = col, col + 1
            if capture is not None:
                capture.step = s + 1
            logits = self._forward(
                model, cache, nxt[:, None], pos[:, None], cache.valid[:, None, None, : col + 1]
            )
            pos += 1
        raise AssertionError("unreachable")

    @staticmethod
    def _cached(prompt: list[int], done: Completion, cache: StaticKV, row: int, prompt_columns: Tensor,
                p: int, fed: int) -> CachedRow:  # fmt: skip
        """What row `row` fed to the model: the prompt, then the first `fed` generated tokens."""
        m = min(fed, len(done.token_ids))
        columns = torch.cat([prompt_columns, torch.arange(p, p + m, device=prompt_columns.device)])
        return CachedRow([*prompt, *done.token_ids[:m]], cache, row, columns)
