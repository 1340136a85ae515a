"""One loader for any causal or seq2seq LM: a preset name, a local folder, a run folder, or a hub name.

    loaded = load_model("smollm2-135m")
    loaded.model, loaded.tokenizer, loaded.is_encoder_decoder, loaded.eos_token_id
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from cagsr.data import hub
from cagsr.errors import ModelError
from cagsr.models import tiny
from cagsr.models.config import ModelConfig
from cagsr.models.smollm2 import ensure_converted


@dataclass
class LoadedModel:
    """A model with its tokenizer and the few facts every stage needs."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str

    @property
    def is_encoder_decoder(self) -> bool:
        return bool(self.model.config.is_encoder_decoder)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def eos_token_id(self) -> int:
        """The token that ends a response: the chat end marker when the tokenizer has one."""
        im_end = self.tokenizer.convert_tokens_to_ids(tiny.IM_END)
        if isinstance(im_end, int) and im_end != self.tokenizer.unk_token_id:
            return im_end
        return int(self.tokenizer.eos_token_id)

    @property
    def max_context(self) -> int:
        config = self.model.config
        for key in ("max_position_embeddings", "n_positions", "max_length"):
            value = getattr(config, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048  # T5 has relative positions: cap for memory, not correctness


def _check_local_config(path: Path) -> None:
    """A local folder's config.json must be a JSON object: one line naming the file, not a library traceback."""
    file = path / "config.json"
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ModelError(f"{file}: not UTF-8 text (not a model config)") from None
    except OSError as err:
        raise ModelError(f"{file}: cannot be read ({err.strerror or err})") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ModelError(f"{file}:{err.lineno}: invalid JSON ({err.msg}); the model folder is damaged") from None
    if not isinstance(config, dict):
        raise ModelError(f"{file}: expected a JSON object, got {type(config).__name__}")


def _path_loader(path: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if path.is_dir():
        _check_local_config(path)
    config = AutoConfig.from_pretrained(path)
    cls = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    return cls.from_pretrained(path, dtype=torch.float32), AutoTokenizer.from_pretrained(path)


def _tiny(builder: Callable[[int], PreTrainedModel]) -> Callable[[], tuple]:
    def load():
        tokenizer = AutoTokenizer.from_pretrained(tiny.ensure_tokenizer())
        return builder(len(tokenizer)), tokenizer

    return load


PRESETS: dict[str, Callable[[], tuple[PreTrainedModel, PreTrainedTokenizerBase]]] = {
    "smollm2-135m": lambda: _path_loader(ensure_converted()),
    "tiny-llama": _tiny(tiny.tiny_llama),
    "tiny-t5": _tiny(tiny.tiny_t5),
}


def resolve_run_folder(path: Path) -> Path:
    """A cagsr run folder points at its latest saved model; a model folder is itself."""
    for candidate in (path / "model", path / "checkpoints" / "latest" / "policy"):
        if (candidate / "config.json").exists():
            return candidate
    return path


HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")  # org/name as the hub spells ids


def _hub_cached(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # noqa: BLE001 - an id the hub would reject is simply not cached
        return False


def _hub_loader(name: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A hub model: from the local cache when it is there, else from the hub when it can be reached;
    anything else fails at once with one line."""
    presets = ", ".join(PRESETS)
    if not HUB_NAME.match(name):
        raise ModelError(f"{name}: not a preset ({presets}), an existing local folder, or a hub model name")
    if not _hub_cached(name) and (why := hub.hub_unavailable()):
        raise ModelError(f"{name}: not a preset ({presets}), a local folder, or a cached hub model, and {why}")
    try:
        return _path_loader(Path(name))
    except (OSError, ValueError) as err:
        raise ModelError(
            f"{name}: not a preset ({presets}), a local folder, or a reachable hub model ({type(err).__name__})"
        ) from None


def _select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_model(config: ModelConfig | str) -> LoadedModel:
    """Load a model and tokenizer; errors name the model and what was tried."""
    config = ModelConfig(name=config) if isinstance(config, str) else config
    name = config.name
    if name in PRESETS:
        model, tokenizer = PRESETS[name]()
    elif Path(name).expanduser().exists():
        folder = resolve_run_folder(Path(name).expanduser())
        if not (folder / "config.json").exists():
            raise ModelError(f"{name}: folder has no config.json (not a model or cagsr run folder)")
        try:
            model, tokenizer = _path_loader(folder)
        except (OSError, ValueError, KeyError) as err:  # transformers' own reasons: a damaged or foreign folder
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ModelError(f"{folder}: cannot load the model ({reason})") from None
    else:
        model, tokenizer = _hub_loader(name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.is_encoder_decoder and model.config.pad_token_id is not None:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(model.config.pad_token_id)
    tokenizer.padding_side = "left"
    dtype = getattr(torch, config.dtype)
    model = model.to(device=_select_device(config.device), dtype=dtype).eval()
    return LoadedModel(model=model, tokenizer=tokenizer, name=name)
