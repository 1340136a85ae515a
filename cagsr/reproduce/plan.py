"""Every scale of `cagsr reproduce` as a plan: how long SFT and every RL row train, on which held-out items they
are judged. One pipeline (reproduce/pipeline.py) runs them all.

    plan = PLANS["medium-v2"]       # SmolLM2-135M, STAR / GSM8K, 3 supervised models, rows stop when risen
    plan = PLANS["small"]           # a plan without a stopping rule: every RL row trains ppo.iterations
    plan = PLANS["tiny-medium"]     # the medium code path with tiny-llama and generated data (tests)

SFT trains until its validation loss has flattened (sft.patience) or for sft.max_steps. With a stopping rule
every RL row trains in chunks of `stop.check_every` PPO iterations (a resumed `cagsr train` run); after
each chunk its greedy replies to the `check_items` stopping items are scored with the row's own reward,
and training stops once the paired bootstrap lower bound of (row - supervised model) over those items
exceeds `stop.margin`, or at `stop.max_iterations`. The stopping items are disjoint from the final held-out
items (so the stopping rule does not select on the test set) and from everything trained on. Without one
(stop None: tiny, small, full) a row trains its ppo.iterations straight through.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from cagsr.config import check_range


@dataclass
class StopRule:
    """When an RL row has trained long enough: its own reward clearly above the supervised model's."""

    check_every: int = 5
    """PPO iterations between two checks (one resumed chunk of `cagsr train`)."""
    min_iterations: int = 5
    """No stop before this many iterations."""
    max_iterations: int = 40
    """Cap: the row stops here whether or not its reward rose (recorded as reason 'cap')."""
    margin: float = 1e-4
    """'Clearly above': the lower end of the paired bootstrap interval must exceed this (1e-4: above the
    float noise of re-scoring an unchanged model; the reward moves by ~0.05 in the preset runs)."""
    level: float = 0.95
    """Coverage of the paired bootstrap interval."""
    n_boot: int = 1000
    """Bootstrap resamples per check."""

    def __post_init__(self) -> None:
        check_range("stop.check_every", self.check_every, low=1)
        check_range("stop.max_iterations", self.max_iterations, low=self.check_every)
        check_range("stop.level", self.level, low=0.5, high=0.999)


@dataclass
class ReproducePlan:
    """A reproduction judged by paired statistics on fixed held-out items."""

    model: str = "smollm2-135m"
    """Base model every supervised model starts from."""
    data: dict = field(default_factory=dict)
    """table -> DataConfig mapping of the source the splits are drawn from."""
    fallback: dict = field(default_factory=dict)
    """table -> DataConfig mapping used when `data`'s file is not on this machine (the small scales fall back
    to generated samples); empty: a missing file is an error."""
    seeds_core: int = 3
    """Seeds of the core rows (No-RL, CAGSR single-turn, CAGSR multi-turn); seed s of an RL row starts
    from supervised model s, so No-RL's seeds differ too."""
    seeds_other: int = 1
    """Seeds of every other row."""
    sft_seeds: int = 3
    """Supervised models (one per seed; RL seed s starts from model s mod sft_seeds). No-RL runs
    min(seeds_core, sft_seeds) seeds: its greedy evaluation of one model is the same every time."""
    heldout: dict = field(default_factory=lambda: {"dialogue": 150, "cot": 200})
    """Final held-out items per table (dialogues with all their agent turns, or math problems)."""
    easy_items: int = 200
    """CoT: size of the second held-out set, GSM8K's easiest problems (at most `easy_max_steps` steps)."""
    easy_max_steps: int = 2
    """Most reference steps of a problem in the easy set."""
    check_items: int = 32
    """Stopping items (disjoint from the held-out ones) scored after every chunk."""
    sft: dict = field(default_factory=dict)
    """SFTConfig overrides (max_steps is the cap, patience/min_delta the flattening rule)."""
    ppo: dict = field(default_factory=dict)
    """Dotted TrainJob overrides shared by every RL row (ppo.iterations is set by the stop rule)."""
    eval: dict = field(default_factory=dict)
    """EvalSettings of the final held-out evaluation (same for every row, engine included)."""
    check_eval: dict = field(default_factory=dict)
    """EvalSettings of the stopping checks."""
    stop: StopRule | None = field(default_factory=StopRule)
    """When an RL row stops training; None: it trains ppo.iterations straight through (no stopping items)."""
    n_boot: int = 2000
    """Bootstrap resamples of the paired intervals in the table."""

    def source(self, table: str) -> dict:
        """The DataConfig mapping the table's splits are drawn from (the fallback when `data` is missing)."""
        from pathlib import Path

        data = self.data[table]
        missing = not data["path"].startswith("generated:") and not Path(data["path"]).exists()
        return self.fallback[table] if missing and table in self.fallback else data

    def seeds(self, core: bool, rl: bool = True, own: int | None = None) -> int:
        """Seeds of a row: its `own` count when it has one, else the core or other count (No-RL: at most one
        per supervised model)."""
        n = own if own is not None else self.seeds_core if core else self.seeds_other
        return n if rl else min(n, self.sft_seeds)


_STAR = {"path": "../shared/data/star_dialogues.jsonl"}
_GSM8K = {"path": "../shared/data/gsm8k_train.jsonl"}

# Sized from measured costs (2-core CPU, 2 threads; docs/results/reproduce-medium-design.md): an
# SFT step of 8 x 384 tokens takes ~35 s, so SFT runs 4 x 320; a held-out dialogue turn costs
# ~0.6 s at 384 tokens of history (1.5 s at 512), so histories are cut to 384 tokens. The final
# evaluation reads every agent turn of the 150 dialogues (~1,100); the stopping checks the first 2.
_MEDIUM = ReproducePlan(
    data={"dialogue": _STAR, "cot": _GSM8K}, sft_seeds=1,
    heldout={"dialogue": 150, "cot": 100}, easy_items=200,
    sft={"max_steps": 60, "batch_size": 4, "lr": 5e-5, "eval_every": 10, "eval_pairs": 16,
         "patience": 2, "min_delta": 0.01, "samples": 0, "max_context": 320},
    # the dialogue-star / cot-gsm8k presets' rollout sizes, at the learning rate that moved the reward
    ppo={"ppo.epochs": 2, "rollout.episodes": 4, "rollout.turns": 3, "rollout.sampling.max_new_tokens": 24,
         "rollout.cot_max_new_tokens": 64, "rollout.max_context": 384, "attention.last_layers": 1,
         "optimizer.lr": 1e-5, "ppo.critic": "head", "optimizer.critic_lr": 1e-4, "heldout.every": 1000,
         "heldout.episodes": 4, "checkpoints.keep": 1, "scoring.layout": "packed"},
    eval={"engine": "auto", "max_new_tokens": 24, "cot_max_new_tokens": 96, "max_turns": None,
          "max_context": 384, "batch_size": 16},
    check_eval={"engine": "auto", "max_new_tokens": 24, "cot_max_new_tokens": 64, "max_turns": 2,
                "max_context": 384, "batch_size": 16},
    stop=StopRule(check_every=5, min_iterations=5, max_iterations=15),
)

# The sizes where the first medium run fell short of them: 3 supervised models (so No-RL has 3
# seeds and RL seed s starts from model s), SFT capped at 200 steps so it stops by flattening, 200 GSM8K
# problems held out, and twice the stopping items (32 lacked the power to see rises the held-out set
# shows). About 13-14 h at one thread for both tables (docs/results/reproduce-medium-design.md); it needs
# its own output folder, since its splits and supervised models differ from the first run's.
_MEDIUM_V2 = dataclasses.replace(_MEDIUM, sft_seeds=3, heldout={"dialogue": 150, "cot": 200}, check_items=64,
                                 sft={**_MEDIUM.sft, "max_steps": 200})


def _fixed(model: str, data: dict, sft_steps: int, heldout: int, ppo: dict, eval_: dict) -> ReproducePlan:
    """A plan without a stopping rule: one supervised model of `sft_steps` steps, every RL row trains
    ppo.iterations, `heldout` items judged per table; seeds come from `cagsr reproduce --seeds`."""
    return ReproducePlan(
        model=model, data=data, seeds_core=1, seeds_other=1, sft_seeds=1,
        fallback={"dialogue": {"path": "generated:dialogue", "num_generated": 48},
                  "cot": {"path": "generated:math", "num_generated": 48}},
        heldout={"dialogue": heldout, "cot": heldout}, easy_items=0, check_items=0,
        sft={"max_steps": sft_steps, "batch_size": 4, "eval_every": 10_000, "samples": 0},
        ppo=ppo, eval={"engine": "auto", **eval_}, check_eval={}, stop=None, n_boot=1000)


_SHARED_DATA = {"dialogue": {"path": "../shared/data/star_dialogues.jsonl"},
                "cot": {"path": "../shared/data/gsm8k_train.jsonl"}}

PLANS = {
    "tiny": _fixed(
        "tiny-llama", {"dialogue": {"path": "generated:dialogue", "num_generated": 48},
                       "cot": {"path": "generated:math", "num_generated": 48}}, 3, 4,
        {"ppo.iterations": 2, "ppo.epochs": 1, "rollout.episodes": 4, "rollout.turns": 2,
         "rollout.sampling.max_new_tokens": 6, "rollout.cot_max_new_tokens": 12, "rollout.max_context": 192,
         "heldout.every": 100, "heldout.episodes": 2, "ppo.critic": "head"},
        {"max_new_tokens": 6, "cot_max_new_tokens": 12, "max_turns": 2}),
    "small": _fixed(
        "smollm2-135m", {t: {**d, "limit": 400} for t, d in _SHARED_DATA.items()}, 8, 10,
        {"ppo.iterations": 3, "ppo.epochs": 1, "rollout.episodes": 4, "rollout.turns": 2,
         "rollout.sampling.max_new_tokens": 20, "rollout.cot_max_new_tokens": 48, "rollout.max_context": 320,
         "heldout.every": 100, "heldout.episodes": 2, "ppo.critic": "head", "ppo.minibatch_episodes": 2},
        {"max_new_tokens": 24, "cot_max_new_tokens": 64, "max_turns": 2}),
    "full": _fixed(
        "t5-large", _SHARED_DATA, 2000, 500,
        {"ppo.iterations": 500, "ppo.epochs": 3, "rollout.episodes": 64, "rollout.turns": 5,
         "rollout.sampling.max_new_tokens": 64, "rollout.cot_max_new_tokens": 160, "ppo.critic": "separate",
         "ppo.minibatch_episodes": 8, "model.dtype": "bfloat16"},
        {"max_new_tokens": 64, "cot_max_new_tokens": 160, "max_turns": 5}),
    "medium": _MEDIUM,
    "medium-v2": _MEDIUM_V2,
    "tiny-medium": ReproducePlan(
        model="tiny-llama", seeds_core=2, seeds_other=1, sft_seeds=2,
        data={"dialogue": {"path": "generated:dialogue", "num_generated": 40},
              "cot": {"path": "generated:math", "num_generated": 40}},
        heldout={"dialogue": 5, "cot": 5}, easy_items=4, check_items=3,
        sft={"max_steps": 6, "batch_size": 2, "eval_every": 2, "eval_pairs": 4, "patience": 1, "min_delta": 0.5,
             "samples": 0},
        ppo={"ppo.epochs": 1, "rollout.episodes": 2, "rollout.turns": 2, "rollout.sampling.max_new_tokens": 4,
             "rollout.cot_max_new_tokens": 8, "rollout.max_context": 160, "heldout.every": 1000,
             "heldout.episodes": 1, "ppo.critic": "head", "checkpoints.keep": 1},
        eval={"max_new_tokens": 4, "cot_max_new_tokens": 8, "max_turns": 2, "max_context": 192},
        check_eval={"max_new_tokens": 4, "cot_max_new_tokens": 8, "max_turns": 1, "max_context": 192},
        stop=StopRule(check_every=1, min_iterations=1, max_iterations=2, n_boot=200),
        n_boot=200,
    ),
}
