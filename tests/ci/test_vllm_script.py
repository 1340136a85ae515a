"""scripts/test-vllm.sh, the CI step for the vLLM engine: it skips (exit 0, with the reason) only where the
packages cannot be installed at all, and .ci/run calls it.

The real build and run (about 2 + 4 minutes) is `bash scripts/test-vllm.sh` itself; here pip is pointed at
an empty package folder, so nothing can be installed."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_the_vllm_script():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "bash scripts/test-vllm.sh" in lines


def test_skips_with_the_reason_when_nothing_can_be_installed(tmp_path):
    empty = tmp_path / "no-packages"
    empty.mkdir()
    venv = tmp_path / "venv-vllm"
    env = os.environ | {"CAGSR_VLLM_VENV": str(venv), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(empty),
                        "PIP_CONFIG_FILE": os.devnull, "CAGSR_VLLM_INSTALL_TIMEOUT": "300"}
    out = subprocess.run(["bash", str(ROOT / "scripts" / "test-vllm.sh")], env=env, capture_output=True, text=True,
                         timeout=400)
    assert out.returncode == 0, out.stderr[-2000:]
    reason = [line for line in out.stderr.splitlines() if line.startswith("vLLM tests SKIPPED: ")]
    assert len(reason) == 1 and "pip cannot install torch==2.13.0" in reason[0], out.stderr[-2000:]
    assert not venv.exists()  # no half-built virtualenv is left to look installed next time
    assert "passed" not in out.stdout


def test_a_failed_build_that_is_not_a_missing_package_fails(tmp_path):
    """A build step that breaks (here: the Python that makes the virtualenv exits 3) is a failure, not a skip."""
    env = os.environ | {"CAGSR_VLLM_VENV": str(tmp_path / "venv-vllm"), "PYTHON": str(tmp_path / "no-python")}
    (tmp_path / "no-python").write_text("#!/bin/sh\nexit 3\n")
    (tmp_path / "no-python").chmod(0o755)
    out = subprocess.run(["bash", str(ROOT / "scripts" / "test-vllm.sh")], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0
    assert "SKIPPED" not in out.stderr
