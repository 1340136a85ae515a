"""What `cagsr bench` measures: one BenchConfig per run.

from cagsr.bench import BenchConfig, run
print(run(BenchConfig(quick=True)))
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

SECTIONS = ("single", "dialogue", "cot", "t5", "ppo", "packing", "estimators")
ENGINES = ("baseline", "hf", "lean", "vllm")


@dataclass
class BenchConfig:
    model: str = "smollm2-135m"
    """Decoder-only model: a preset or folder (load_model), or 'random-1b' / 'random-0.5b' (random weights)."""
    t5_model: str = "tiny-t5"
    """Encoder-decoder model for the 't5' section (lean and HF engines only: vLLM runs no T5)."""
    batch: int = 8
    """B prompts per turn."""
    candidates: int = 1
    """K candidate responses per prompt."""
    prompt_tokens: int = 256
    """N tokens of every prompt (a chat-formatted history cut to this length)."""
    new_tokens: int = 64
    """S tokens generated per turn; every row generates exactly S (the end token is made unreachable)."""
    turns: int = 5
    """Turns of the dialogue section; the history grows by the reply and a user message each turn."""
    user_tokens: int = 32
    """Tokens of the user message appended to the history after each dialogue turn."""
    cot_steps: int = 5
    """Reasoning steps of the chain-of-thought section (each continues the previous ones)."""
    step_tokens: int = 32
    """Tokens per reasoning step."""
    repeats: int = 5
    """Repeats of the single-turn section (median reported); dialogue and CoT run once, their turns are the samples."""
    engines: list[str] = field(default_factory=lambda: list(ENGINES))
    """Engines to measure: baseline (HF generate, eager + output_attentions), hf, lean, vllm (skipped when not importable)."""
    sections: list[str] = field(default_factory=lambda: list(SECTIONS))
    """Sections: single, dialogue, cot, t5, ppo (one PPO iteration of the 'dialogue' preset, by phase), packing
    (per-turn rows vs packed dialogues: the ppo_preset iteration by phase, and dialogues of 1, 2, 4, 8 turns),
    estimators (one iteration of the dialogue preset with PPO + value head against dialogue-grpo without a critic,
    at the same sampled tokens, by phase)."""
    ppo_preset: str = "dialogue"
    """Training preset whose PPO iteration the 'ppo' section times."""
    quick: bool = False
    """Smoke-test sizes (tiny-llama, batch 2, 32-token prompts, 8 new tokens, 2 turns/steps, 1 repeat, no PPO)."""
    device: str = "auto"
    """cpu, cuda or auto."""
    dtype: str = "float32"
    """Model dtype (float32 on this CPU: bf16 is slower here; bfloat16 on a GPU)."""
    threads: int = 0
    """torch CPU threads (0: torch's default, one per core)."""
    seed: int = 0
    """Sampling seed (the same for every engine)."""
    output_dir: str | None = None
    """Folder for bench.md (the table) and bench.json (all numbers); None prints only."""

    def __post_init__(self) -> None:
        unknown = set(self.engines) - set(ENGINES) | set(self.sections) - set(SECTIONS)
        if unknown:
            raise ValueError(
                f"bench: unknown engines/sections {sorted(unknown)} (engines {ENGINES}, sections {SECTIONS})"
            )
        for name in (
            "batch",
            "candidates",
            "prompt_tokens",
            "new_tokens",
            "turns",
            "cot_steps",
            "step_tokens",
            "repeats",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"bench.{name}: must be >= 1, got {getattr(self, name)}")

    def effective(self) -> BenchConfig:
        """The sizes actually run: quick mode shrinks everything."""
        if not self.quick:
            return self
        model = "tiny-llama" if self.model == "smollm2-135m" else self.model
        sections = [s for s in self.sections if s not in ("ppo", "packing", "estimators")]
        return replace(self, model=model, batch=2, prompt_tokens=32, new_tokens=8, turns=2, user_tokens=8,
                       cot_steps=2, step_tokens=8, repeats=1, sections=sections, quick=False)  # fmt: skip
