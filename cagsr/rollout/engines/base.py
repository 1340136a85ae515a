"""The engine interface every generator implements, and the registry that picks one by name.

An engine turns B prompts (token id lists) into K sampled completions each. It never computes
attention or PPO log-probs: those come from the policy's own teacher-forced pass, which gives
the same numbers exactly (method.md, section 9). After each policy update the trainer calls
`sync_weights` so engines holding their own copy of the weights (vLLM) sample from the new policy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cagsr.config import check_range
from cagsr.errors import ConfigError
from cagsr.models.registry import LoadedModel


@dataclass
class SamplingConfig:
    temperature: float = 0.8
    """Softmax temperature (the paper's 0.8)."""
    top_k: int = 50
    """Sample among the k most likely tokens (0 disables)."""
    top_p: float = 0.95
    """Nucleus sampling mass (1.0 disables)."""
    max_new_tokens: int = 64
    """Most tokens generated per turn."""
    num_candidates: int = 1
    """K candidate responses sampled per turn."""
    do_sample: bool = True
    """Sample; false decodes greedily."""

    def __post_init__(self) -> None:
        check_range("temperature", self.temperature, low=0.0, low_open=True)
        check_range("top_k", self.top_k, low=0)
        check_range("top_p", self.top_p, low=0.0, high=1.0, low_open=True)
        check_range("max_new_tokens", self.max_new_tokens, low=1)
        check_range("num_candidates", self.num_candidates, low=1)


@dataclass
class Completion:
    """One generated response."""

    token_ids: list[int]
    """Generated ids, ending with the end token if the model produced it."""
    finished: bool
    """True when the end token was produced within max_new_tokens."""
    sampler_logprobs: list[float] | None = field(default=None)
    """Log-probs the engine sampled with, when it reports them (diagnostics only)."""


class Engine(Protocol):
    name: str

    def generate(self, prompts: list[list[int]], sampling: SamplingConfig, seed: int | None = None,
                 sessions: Sequence[Hashable | None] | None = None) -> list[list[Completion]]:
        """B prompts -> B lists of K completions.

        sessions: one key per prompt (an episode); engines that keep KV caches reuse the cached
        prefix when the next prompt of the same session extends it. Others ignore it.
        """
        ...

    def sync_weights(self) -> None:
        """Make generation follow the policy's current weights."""
        ...


_ENGINES: dict[str, Callable[[LoadedModel], Engine]] = {}


def register_engine(name: str):
    """Decorator: make an engine constructor `(loaded) -> Engine` available by name."""

    def wrap(factory):
        _ENGINES[name] = factory
        return factory

    return wrap


def available_engines() -> list[str]:
    import cagsr.rollout.engines.hf  # noqa: F401 - registers "hf"

    for optional in ("cagsr.rollout.engines.lean", "cagsr.rollout.engines.vllm"):
        with contextlib.suppress(ImportError):
            __import__(optional)
    return sorted(_ENGINES)


def make_engine(name: str, loaded: LoadedModel) -> Engine:
    """An engine by name; 'auto' takes the fastest one that supports the model."""
    names = available_engines()
    if name == "auto":
        for candidate in ("vllm", "lean", "hf"):
            if candidate in _ENGINES and getattr(_ENGINES[candidate], "supports", lambda _: True)(loaded):
                return _ENGINES[candidate](loaded)
    if name not in _ENGINES:
        raise ConfigError(f"rollout.engine: unknown engine {name!r} (available: auto, {', '.join(names)})")
    return _ENGINES[name](loaded)
