#!/usr/bin/env bash
# The engine benchmark on one NVIDIA GPU (H100 class), in under 8 minutes: HF generate (the paper's
# eager + output_attentions baseline, and sdpa), the lean engine, with and without attention capture,
# on a Llama-shaped 1B model with random weights in bf16 (no pretrained model or tokenizer needed).
# Needs PyTorch with CUDA and transformers; vLLM is not needed (its rows are skipped when absent).
#
#   CAGSR_BENCH_OUT=/tmp/gpu-bench bash benchmarks/gpu.sh      # writes bench.md and bench.json there
#   CAGSR_BENCH_MODEL=random-0.5b bash benchmarks/gpu.sh        # a smaller config ($OUT is the fallback folder)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${CAGSR_BENCH_OUT:-${OUT:-}}"
if [[ -z "$out" ]]; then
    echo "set CAGSR_BENCH_OUT to the folder for the table" >&2
    exit 2
fi
mkdir -p "$out"
python - <<'PY'
import torch, transformers
assert torch.cuda.is_available(), "benchmarks/gpu.sh needs a CUDA GPU"
print(f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.cuda.get_device_name(0)}")
PY
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader > "$out/gpu.txt" 2>&1 || true
# 450 s: the table of every finished section is written as it completes, so a timeout keeps the rest.
PYTHONPATH=. timeout 450 python benchmarks/engines.py \
    --model "${CAGSR_BENCH_MODEL:-random-1b}" --device cuda --dtype bfloat16 \
    --engines baseline hf lean vllm --sections single dialogue cot \
    --batch 8 --prompt-tokens 256 --new-tokens 64 --turns 5 --cot-steps 5 --repeats 5 \
    --output-dir "$out" | tee "$out/stdout.txt"
