"""The systems a benchmark row times: the paper's baseline, and each engine with or without capture.

    .venv/bin/python benchmarks/engines.py --quick

Shapes: B prompts, K candidates, N prompt tokens, S new tokens.

A turn = generate K candidates for B prompts, then (for "+ capture" rows) the exact attention capture:
forward_with_capture over (prompt, response) for every candidate, the teacher-forced pass that also gives
the PPO log-probs. The baseline is the paper's: transformers' generate with eager attention and
output_attentions, which captures while generating and re-reads nothing, but runs the slow eager kernels.
"lean, fused capture" takes the same attention rows from the decoding pass itself (lean.py).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Hashable
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from cagsr.attention import forward_with_capture
from cagsr.attention.tap import routed
from cagsr.formatting import collate_pairs, pad_rows
from cagsr.models.registry import LoadedModel
from cagsr.rollout.engines.base import SamplingConfig
from cagsr.rollout.engines.hf import split_completion


@dataclass
class Timing:
    generate: float
    """Seconds generating."""
    capture: float
    """Seconds in the teacher-forced capture pass (0 when the row captures while generating, or not at all)."""
    tokens: float
    """Mean tokens generated per row (S when every row ran to the end)."""

    @property
    def total(self) -> float:
        return self.generate + self.capture


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class BaselineSystem:
    """transformers' generate with eager attention and output_attentions=True (the paper's baseline)."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.name = "HF generate, eager + output_attentions (baseline)"

    @torch.no_grad()
    def turn(self, prompts: list[list[int]], sampling: SamplingConfig, seed: int, sessions=None, *,
             candidates: int = 1) -> tuple[list[list[int]], Timing]:  # fmt: skip
        loaded, k = self.loaded, candidates
        ids, mask = pad_rows(prompts, loaded.tokenizer.pad_token_id, left=not loaded.is_encoder_decoder)
        torch.manual_seed(seed)
        _sync(loaded.device)
        start = time.perf_counter()
        with routed(loaded.model, "eager"):
            out = loaded.model.generate(
                input_ids=ids.to(loaded.device), attention_mask=mask.long().to(loaded.device),
                do_sample=sampling.do_sample, temperature=sampling.temperature, top_k=sampling.top_k,
                top_p=sampling.top_p, max_new_tokens=sampling.max_new_tokens, num_return_sequences=k,
                eos_token_id=loaded.eos_token_id, pad_token_id=loaded.tokenizer.pad_token_id,
                output_attentions=True, return_dict_in_generate=True,
            )  # fmt: skip
        _sync(loaded.device)
        seconds = time.perf_counter() - start
        first = 1 if loaded.is_encoder_decoder else ids.shape[1]
        rows = [
            split_completion(r, loaded.eos_token_id, -1).token_ids for r in out.sequences[:, first:].tolist()
        ]
        return rows[::k], Timing(seconds, 0.0, sum(map(len, rows)) / len(rows))

    def end(self, sessions) -> None:
        pass


class EngineSystem:
    """An engine's generate, optionally followed by the teacher-forced capture pass (timed apart, so one
    measurement gives both the "engine" row and the "engine + capture" row)."""

    def __init__(
        self, name: str, engine, loaded: LoadedModel, capture: bool, fast_capture=nullcontext
    ) -> None:
        self.name, self.engine, self.loaded, self.capture = name, engine, loaded, capture
        self.fast_capture = fast_capture
        self.sessions_ok = "sessions" in inspect.signature(engine.generate).parameters

    def turn(self, prompts: list[list[int]], sampling: SamplingConfig, seed: int,
             sessions: list[Hashable] | None = None, *, candidates: int = 1
             ) -> tuple[list[list[int]], Timing]:  # fmt: skip
        """-> (candidate 0's tokens for every prompt, timing)."""
        device, k = self.loaded.device, candidates
        extra = {"sessions": sessions} if sessions is not None and self.sessions_ok else {}
        if k != 1:  # left out at 1, so an engine without the argument still runs the K = 1 rows
            extra["candidates"] = k
        _sync(device)
        start = time.perf_counter()
        out = self.engine.generate(prompts, sampling, seed=seed, **extra)
        _sync(device)
        generate = time.perf_counter() - start
        responses = [c.token_ids for cands in out for c in cands]
        capture = self._capture([p for p in prompts for _ in range(k)], responses) if self.capture else 0.0
        return [cands[0].token_ids for cands in out], Timing(
            generate, capture, sum(map(len, responses)) / len(responses)
        )

    @torch.no_grad()
    def _capture(self, histories: list[list[int]], responses: list[list[int]]) -> float:
        loaded = self.loaded
        batch = collate_pairs(histories, responses, loaded.tokenizer.pad_token_id, loaded.is_encoder_decoder)
        _sync(loaded.device)
        start = time.perf_counter()
        with self.fast_capture():
            forward_with_capture(loaded.model, batch.to(loaded.device), last_layers=1)
        _sync(loaded.device)
        return time.perf_counter() - start

    def end(self, sessions: list[Hashable]) -> None:
        for key in sessions if hasattr(self.engine, "end_session") else []:
            self.engine.end_session(key)


def build_systems(
    loaded: LoadedModel, engines: list[str], with_capture: bool = True
) -> tuple[list, list[str]]:
    """The rows for `engines` on this model -> (systems, notes on engines that were skipped)."""
    from cagsr.rollout.engines.hf import HFEngine
    from cagsr.rollout.engines.lean import LeanEngine

    systems, notes = [], []
    # The capture pass is the policy's own and the same for every engine: all "+ capture" rows run it with
    # oneDNN-layout weights where available (fp32 CPU), so the rows differ only in how they generate.
    fast_capture = LeanEngine(loaded).onednn_inference if LeanEngine.supports(loaded) else nullcontext
    if "baseline" in engines:
        systems.append(BaselineSystem(loaded))
    if "hf" in engines:
        systems.append(
            EngineSystem("HF generate (sdpa)", HFEngine(loaded), loaded, with_capture, fast_capture)
        )
    if "lean" in engines:
        if LeanEngine.supports(loaded):
            systems.append(EngineSystem("lean", LeanEngine(loaded), loaded, with_capture, fast_capture))
            systems.append(
                EngineSystem("lean, fused capture", LeanEngine(loaded, capture_layers=1), loaded, False)
            )
        else:
            notes.append(f"lean: {loaded.model.config.model_type} not supported")
    if "vllm" in engines:
        from cagsr.rollout.engines.vllm import VLLMEngine, vllm_available

        if not vllm_available():
            notes.append("vllm: not installed (pip install 'cagsr[vllm]' in its own virtualenv)")
        elif not VLLMEngine.supports(loaded):
            notes.append(
                f"vllm: does not run {loaded.name} here (encoder-decoder, or a head size without CPU kernels)"
            )
        else:
            # 1 GiB of KV cache holds the largest run here (8 x ~1,000 tokens); vLLM's default share of the
            # machine's memory (~5 GiB) next to the baseline's full attention maps got the run OOM-killed.
            engine = (
                VLLMEngine(loaded, kv_cache_memory_bytes=1 << 30)
                if loaded.device.type == "cpu"
                else VLLMEngine(loaded)
            )
            systems.append(EngineSystem("vLLM", engine, loaded, with_capture, fast_capture))
    return systems, notes
