"""The paper's tables as data: rows (what each trains with) and the paper's figures (how big: reproduce/plan.py).

Every RL row starts from the same supervised model. Overrides are dotted TrainJob keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SHARED = Path("../shared/data")


@dataclass
class Row:
    name: str
    """Row label as in the paper."""
    overrides: dict = field(default_factory=dict)
    """TrainJob overrides (dotted keys); empty with rl=False."""
    rl: bool = True
    """False: the supervised model itself (No-RL)."""
    reward_model: str | None = None
    """'synthetic' or 'human': train that reward model first and use reward.kind=model."""
    eval_engine: str = "auto"
    """Engine whose latency the row reports ('hf' for the paper's HF rows)."""
    core: bool = False
    """A core row of the comparison (No-RL, CAGSR single-turn, multi-turn): runs `seeds.core` seeds at medium."""
    seeds: int | None = None
    """Seeds at medium scale when not the plan's (None: seeds_core for core rows, seeds_other for the others)."""
    head_probe: bool = False
    """Train on the head-probe reward fitted on RATINGS with the row's own supervised model, read from that
    model's pass (reward.reader reference): rows need the rated file and are unavailable without it."""
    versus_multi_turn: bool = False
    """Also compared with CAGSR multi-turn on every metric (the controls and the other self-supervised rewards)."""


CONTENT_ROW = "CAGSR multi-turn, content-token reward"
"""The reward version the validity work recommends (coverage over content tokens of the history only)."""
DIALOGUE_ROWS = [
    Row("No-RL", rl=False, eval_engine="hf", core=True),
    Row("Synthetic preference RL", reward_model="synthetic", eval_engine="hf"),
    Row("CAGSR single-turn (HF)", {"reward.history": "single_turn", "rollout.engine": "hf"}, eval_engine="hf",
        core=True),
    Row("CAGSR multi-turn", {}, core=True),
    Row("Human-label RL (limited)", reward_model="human", eval_engine="hf"),
    Row("Ablation: no history coverage", {"reward.coverage_scope": "current_turn"}),
    Row("Ablation: no entropy clamping", {"reward.tau0": float("-inf"), "reward.kappa": 0.0}),
    # A plain dotted key: validated when the row runs, reported as n/a where this version lacks it.
    Row(CONTENT_ROW, {"reward.history_tokens": "content"}),
]
RATINGS = SHARED / "ratings" / "fed_turn.jsonl"
"""Rated replies the head-probe row's probe is fitted on (FED turn-level `overall`): on the validity page the
probe fitted there scored +0.385 on FED's held-out conversations and +0.384 on USR-PersonaChat."""
PROBE_FEATURES = ["lookback", "entropy", "first_mass"]
"""The head probe's per-head features: the three-feature probe that transferred best (validity-ratings-heads.md)."""
POSITIVE, RANDOM = "Positive control (quality reward)", "Random-reward control"


def controls_and_peers(table: str) -> list[Row]:
    """Rows that say how to read the others (issue 23): the positive control trains on the evaluation's quality
    against the recorded data (reward/registry.py `quality`), the random control on a seeded random score of
    the text scaled to the attention reward's spread per turn on the held-out set (standard deviation 0.205 per
    dialogue turn, 0.083 per solution: weights 0.7 and 0.3 on a uniform score, whose deviation is 0.289), then
    the field's self-supervised rewards and the critic-free estimator. Each is compared with No-RL and with
    CAGSR multi-turn."""
    random_weight = 0.7 if table == "dialogue" else 0.3
    rows = [
        Row(POSITIVE, {"reward.kind": "quality"}, seeds=3, versus_multi_turn=True),
        Row(RANDOM, {"reward.parts": [f"{random_weight}*random"]}, seeds=3, versus_multi_turn=True),
        Row("CAGSR multi-turn, GRPO (group 4)", {"ppo.advantage": "grpo", "ppo.critic": "none",
                                                 "rollout.episodes": 4, "rollout.group_size": 4}, versus_multi_turn=True),
        Row("Self-certainty (Intuitor)", {"reward.kind": "self_certainty"}, versus_multi_turn=True),
        Row("Head probe, FED ratings (reference reader)", head_probe=True, versus_multi_turn=True),
        Row("Entropy minimisation (EM-RL)", {"reward.parts": ["-1*predictive_entropy"]}, versus_multi_turn=True),
    ]
    return [r for r in rows if table == "dialogue" or not r.head_probe]


DIALOGUE_ROWS += controls_and_peers("dialogue")
COT_ROWS = [
    *(r for r in DIALOGUE_ROWS if r.reward_model != "human" and r.name != CONTENT_ROW and not r.versus_multi_turn),
    Row("Ablation: uniform weights", {"reward.final_weight": 1.0}),
    *(r for r in DIALOGUE_ROWS if r.name == CONTENT_ROW),
    *controls_and_peers("cot"),
]


def table_rows(table: str) -> list[Row]:
    """The rows of `table` ('dialogue' or 'cot') in the order the table shows them."""
    return DIALOGUE_ROWS if table == "dialogue" else COT_ROWS

PAPER = {
    "dialogue": {
        "columns": ["coherence", "consistency", "helpfulness", "ms/turn"],
        "No-RL": [0.66, 0.71, 3.0, 110], "Synthetic preference RL": [0.71, 0.75, 3.3, 125],
        "CAGSR single-turn (HF)": [0.75, 0.78, 3.6, 110], "CAGSR multi-turn": [0.77, 0.81, 3.8, 35],
        "Human-label RL (limited)": [0.80, 0.85, 4.2, 130],
        "Ablation: no history coverage": ["-1% coherence"], "Ablation: no entropy clamping": ["-2% consistency"],
    },
    "cot": {
        "columns": ["accuracy", "step correctness", "clarity", "ms/step"],
        "No-RL": [0.61, 0.58, 3.1, 105], "Synthetic preference RL": [0.66, 0.62, 3.4, 115],
        "CAGSR single-turn (HF)": [0.68, 0.64, 3.6, 105], "CAGSR multi-turn": [0.71, 0.68, 3.8, 30],
        "Human-label RL (limited)": [0.75, 0.72, 4.1, 120], "Ablation: uniform weights": ["-1.5% accuracy"],
    },
}
