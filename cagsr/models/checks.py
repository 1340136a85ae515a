"""Checks of settings that are fine alone but not for the loaded model, run right after it loads and
before any run folder exists, so a mismatch is one line instead of a traceback mid-run.

    check_capture_layers(2, loaded, "attention.last_layers")
    check_context(loaded, {"rollout.max_context": 768}, {"rollout.sampling.max_new_tokens": 64})
    check_chat_template(loaded, system_prompt="You are a support agent.")
"""

from __future__ import annotations

from cagsr.errors import ConfigError, ModelError
from cagsr.models.registry import LoadedModel

PROBE = "cagsr-probe"


def model_layers(loaded: LoadedModel) -> int | None:
    """Layers whose attention a capture can read: decoder self-attention, or decoder cross-attention."""
    config = loaded.model.config
    keys = ("num_decoder_layers", "decoder_layers", "num_layers") if loaded.is_encoder_decoder else (
        "num_hidden_layers", "n_layer", "num_layers")
    for key in keys:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def model_heads(loaded: LoadedModel) -> int | None:
    config = loaded.model.config
    for key in ("num_attention_heads", "num_heads", "n_head", "decoder_attention_heads"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_capture_layers(last_layers: int, loaded: LoadedModel, key: str = "attention.last_layers") -> None:
    layers, heads = model_layers(loaded), model_heads(loaded)
    if layers is not None and last_layers > layers:
        raise ConfigError(f"{key}: {last_layers} layers to capture, but {loaded.name} has {layers}")
    if heads == 0:
        raise ModelError(f"{loaded.name}: the model has no attention heads to capture")


def position_limit(loaded: LoadedModel) -> int | None:
    """The model's hard context length (absolute positions); None for relative positions (T5)."""
    config = loaded.model.config
    for key in ("max_position_embeddings", "n_positions"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_context(loaded: LoadedModel, contexts: dict[str, int | None], budgets: dict[str, int]) -> None:
    """Every prompt length in `contexts` (key -> tokens), plus the largest generation budget for a
    decoder-only model (whose positions hold prompt and response), must fit the model's positions."""
    limit = position_limit(loaded)
    if limit is None:
        return
    extra_key, extra = max(budgets.items(), key=lambda kv: kv[1]) if budgets and not loaded.is_encoder_decoder \
        else ("", 0)
    for key, tokens in contexts.items():
        if tokens is None:
            continue
        if tokens > limit:
            raise ConfigError(f"{key}: {tokens} tokens, but {loaded.name} has a context of {limit}")
        if tokens + extra > limit:
            raise ConfigError(f"{key} + {extra_key}: {tokens} + {extra} = {tokens + extra} tokens, but "
                              f"{loaded.name} has a context of {limit}")


def check_chat_template(loaded: LoadedModel, system_prompt: str = "") -> None:
    """A decoder-only model formats every prompt with its tokenizer's chat template; a system prompt
    must land in the template's output (some templates reject or silently drop the system role)."""
    if loaded.is_encoder_decoder:
        return
    tokenizer = loaded.tokenizer
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(f"{loaded.name}: its tokenizer has no chat template, which cagsr formats decoder-only "
                         "prompts with (use a chat/instruct model, or set tokenizer.chat_template)")
    if not system_prompt:
        return
    messages = [{"role": "system", "content": PROBE}, {"role": "user", "content": "hi"}]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as err:  # noqa: BLE001 - jinja raises whatever the template raises
        raise ModelError(f"{loaded.name}: its chat template rejects a system message ({type(err).__name__}); "
                         "the data has system prompts") from None
    if PROBE not in text:
        raise ModelError(f"{loaded.name}: its chat template drops the system message; the data has system prompts")
