"""The engine interface every generator implements, and the table that picks one by name.

The built-in engines are the ENGINES table (name -> import path); `rollout.engine` also takes your own
engine class as package.module:Class or path/to/file.py:Class, constructed as Class(loaded).

An engine turns B prompts (token id lists) into K sampled completions each (K = `candidates`, an argument
of the call: training rolls out one reply per turn, the benchmark measures K > 1). It never computes
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
from cagsr.utils.imports import resolve


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
    do_sample: bool = True
    """Sample; false decodes greedily."""

    def __post_init__(self) -> None:
        check_range("temperature", self.temperature, low=0.0, low_open=True)
        check_range("top_k", self.top_k, low=0)
        check_range("top_p", self.top_p, low=0.0, high=1.0, low_open=True)
        check_range("max_new_tokens", self.max_new_tokens, low=1)


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
                 sessions: Sequence[Hashable | None] | None = None, *, candidates: int = 1
                 ) -> list[list[Completion]]:  # fmt: skip
        """B prompts -> B lists of K = `candidates` completions.

        sessions: one key per prompt (an episode); engines that keep KV caches reuse the cached
        prefix when the next prompt of the same session extends it. Others ignore it. Callers that want
        one reply per prompt (the rollout) leave `candidates` out, so engines without it still work.
        """
        ...

    def sync_weights(self) -> None:
        """Make generation follow the policy's current weights."""
        ...


ENGINES: dict[str, str] = {
    "hf": "cagsr.rollout.engines.hf:HFEngine",
    "lean": "cagsr.rollout.engines.lean:LeanEngine",
    "vllm": "cagsr.rollout.engines.vllm:VLLMEngine",
}
"""Built-in engines: name -> import path of the constructor `(loaded) -> Engine`."""

AUTO_ORDER = ("vllm", "lean", "hf")
"""What 'auto' tries, fastest first: the first whose `supports(loaded)` is true (no `supports`: any model)."""

SIGNATURE = "Engine(loaded: LoadedModel) -> Engine"


def engine_factory(name: str) -> Callable[[LoadedModel], Engine]:
    """The constructor of a built-in engine, or of your own named package.module:Class or file.py:Class."""
    return resolve(name, ENGINES, what="engine", setting="rollout.engine", call=SIGNATURE, args=1,
                   extra_names=["auto"])


def available_engines() -> list[str]:
    """The built-in engines whose module imports here (vllm's imports vllm itself only when it starts)."""
    names = []
    for name in ENGINES:
        with contextlib.suppress(ConfigError):  # its module cannot import here
            engine_factory(name)
            names.append(name)
    return sorted(names)


def make_engine(name: str, loaded: LoadedModel) -> Engine:
    """An engine by name; 'auto' takes the fastest one that supports the model."""
    if name == "auto":
        for candidate in AUTO_ORDER:
            try:
                factory = engine_factory(candidate)
            except ConfigError:  # its module cannot import here
                continue
            if getattr(factory, "supports", lambda _: True)(loaded):
                return factory(loaded)
    return engine_factory(name)(loaded)
