"""The machine's floor for one turn, from a bandwidth and a FLOP/s measurement taken in the same run.

    .venv/bin/python -c "from cagsr.bench.machine import measure_machine; print(measure_machine())"

Shapes: B prompts, K candidates, N new prompt tokens, C tokens already in the cache, S new tokens,
L layers, H query heads, Dh head dim, P_layers decoder-layer parameters, V vocabulary, d hidden size.

floor(turn) = prefill FLOPs / F + S x max(W / BW, 2 P B K / F), where
  prefill FLOPs = 2 P_layers B N + 4 L H Dh B (C N + N^2 / 2) + 2 V d B   (layers, causal attention, LM head
                  on the last row only; seq2seq: the encoder's 2 P_enc B N + 4 L H Dh B N^2)
  W  = bytes of the weights one decode step reads (layers, final norm, LM head; an untied input embedding
       is only gathered, so it is left out), BW = the best of a large copy and a large read,
  F  = the best fp32 (or model dtype) matmul rate measured: torch.mm, and oneDNN-layout weights on CPU.
Reading the KV cache, sampling and Python are left out: the floor is a bound no engine can beat.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from cagsr.rollout.engines.onednn import BATCH_HINT, onednn_available
from cagsr.utils.modules import unwrap_peft


@dataclass
class Machine:
    copy_gbs: float
    """Copy bandwidth, GB/s (read + write bytes)."""
    read_gbs: float
    """Read bandwidth (sum of a large tensor), GB/s."""
    mm_gflops: float
    """torch.mm rate (MKL on CPU), GFLOP/s."""
    onednn_gflops: float | None
    """oneDNN (blocked-layout weights) linear rate, GFLOP/s (CPU fp32 only)."""

    @property
    def bandwidth(self) -> float:
        return max(self.copy_gbs, self.read_gbs) * 1e9

    @property
    def flops(self) -> float:
        return max(self.mm_gflops, self.onednn_gflops or 0.0) * 1e9

    def as_dict(self) -> dict:
        return asdict(self)


def _best(fn, repeats: int, sync) -> float:
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def measure_machine(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Machine:
    """Best of a few tries each (the floor is a bound, so take the machine at its fastest in this run)."""
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    n = 1 << 28 if device.type == "cuda" else 1 << 26  # 1 GiB on a GPU, 256 MiB on a CPU (fp32)
    src, dst = torch.ones(n, device=device), torch.empty(n, device=device)
    copy = 2 * n * 4 / _best(lambda: dst.copy_(src), 5, sync) / 1e9
    read = n * 4 / _best(lambda: src.sum(), 5, sync) / 1e9
    m, k, out = (8192, 4096, 4096) if device.type == "cuda" else (2048, 576, 1536)
    x = torch.randn(m, k, device=device, dtype=dtype)
    w = torch.randn(out, k, device=device, dtype=dtype)
    mm = 2 * m * k * out / _best(lambda: x @ w.T, 5, sync) / 1e9
    onednn = None
    if onednn_available(device, dtype):
        pw = torch.ops.mkldnn._reorder_linear_weight(w, BATCH_HINT)
        onednn = (
            2
            * m
            * k
            * out
            / _best(lambda: torch.ops.mkldnn._linear_pointwise(x, pw, None, "none", [], ""), 5, sync)
            / 1e9
        )
    return Machine(copy, read, mm, onednn)


@dataclass
class ModelCost:
    """What the floor formula needs to know about a model."""

    layer_params: int  # P_layers (encoder layers for seq2seq prefill)
    step_params: int  # parameters one decode step multiplies (decoder layers + LM head)
    step_bytes: int  # W
    layers: int
    heads: int
    head_dim: int
    vocab: int
    hidden: int
    encoder_decoder: bool

    def prefill_flops(self, b: int, n: int, cached: int = 0) -> float:
        attention = 4 * self.layers * self.heads * self.head_dim * b
        if self.encoder_decoder:
            return 2 * self.layer_params * b * n + attention * n * n
        return (
            2 * self.layer_params * b * n
            + attention * (cached * n + n * n / 2)
            + 2 * self.vocab * self.hidden * b
        )

    def floor(self, machine: Machine, b: int, k: int, n: int, s: int, cached: int = 0) -> float:
        """Seconds: the bound for a turn prefilling n new tokens on top of `cached`, then s decode steps."""
        step = max(self.step_bytes / machine.bandwidth, 2 * self.step_params * b * k / machine.flops)
        return self.prefill_flops(b, n, cached) / machine.flops + s * step


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def model_cost(model: nn.Module) -> ModelCost:
    model = unwrap_peft(model)
    cfg = model.config
    head = model.get_output_embeddings()
    vocab, hidden = head.weight.shape
    size = head.weight.element_size()
    if cfg.is_encoder_decoder:  # T5: encoder prefill, decoder + head per step
        heads, layers = cfg.num_heads, cfg.num_layers
        head_dim, enc = cfg.d_kv, _numel(model.encoder) - _numel(model.shared)
        step = _numel(model.decoder) - _numel(model.shared) + head.weight.numel()
        return ModelCost(enc, step, step * size, layers, heads, head_dim, vocab, hidden, True)
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    layer_params = _numel(model.model.layers)
    step = layer_params + _numel(model.model.norm) + head.weight.numel()
    return ModelCost(
        layer_params, step, step * size, len(model.model.layers), heads, head_dim, vocab, hidden, False
    )


def describe_machine() -> dict[str, str]:
    """CPU/GPU, cores, threads, load, library versions and the git commit, for the table header."""
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": str(torch.get_num_threads()),
    }
    import transformers

    info["transformers"] = transformers.__version__
    try:
        import vllm

        info["vllm"] = vllm.__version__
    except ImportError:
        info["vllm"] = "not installed"
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    info["cpu"] = f"{cpu}, {os.cpu_count()} cores"
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    info["load_average"] = " ".join(_read("/proc/loadavg").split()[:3]) or "n/a"
    info["commit"] = _git_commit()
    return info


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _git_commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    return out.stdout.strip() + (" (+ uncommitted changes)" if dirty.stdout.strip() else "")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_info(load_at_start: str, **extra: str) -> dict[str, str]:
    """describe_machine() with the load average at the start and now, the torch threads and `extra`."""
    return describe_machine() | {"load_average": f"{load_at_start} at start, {load_average()} at the end",
                                 "threads": str(torch.get_num_threads()), **extra}


def publish(report: str, output: Path | None) -> None:
    """Print a benchmark's Markdown report and also write it to `output` when given."""
    print(report)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report, encoding="utf-8")
