"""Turn a batch's Experience and episodes into logged metrics and readable sample episodes."""

from __future__ import annotations

from torch import Tensor

from cagsr.evaluation.metrics.quality import distinct_n
from cagsr.ppo import functional as PF
from cagsr.ppo.experience import Experience
from cagsr.reward.attention_reward import COMPONENTS
from cagsr.rollout.episode import Episode
from cagsr.scoring.passes import turn_values


def masked_turn_mean(values: Tensor, mask: Tensor) -> float:
    return float((values * mask).sum() / mask.sum().clamp_min(1))




def reward_metrics(components: dict[str, Tensor], prefix: str = "reward") -> dict[str, float]:
    mask = components["turn_mask"].float()
    return {f"{prefix}/{k}": masked_turn_mean(components[k], mask) for k in COMPONENTS}


def experience_metrics(exp: Experience, episodes: list[Episode]) -> dict[str, float]:
    mask = exp.turn_mask.float()
    response = exp.rows.response_mask.float()
    tokens = response.sum().clamp_min(1)
    kl_ref = {f"policy/kl_ref{suffix}": float((PF.kl_penalty(exp.old_logprobs, exp.ref_logprobs, kind) * response
                                                ).sum() / tokens) for suffix, kind in (("", "k1"), ("_k3", "k3"))}
    texts = [t for ep in episodes for t in ep.turn_texts]
    v_turn = turn_values(exp.old_values, exp.rows, *exp.turn_mask.shape)
    return {
        **reward_metrics(exp.components),
        "reward/turn_reward": masked_turn_mean(exp.rewards, mask),
        "reward/return": masked_turn_mean(exp.returns, mask),
        "reward/turns_per_episode": float(mask.sum(-1).mean()),
        **kl_ref,  # k1 (policy/kl_ref, can be negative on a sample) and k3 (policy/kl_ref_k3, never negative)
        "policy/response_len": float(response.sum() / max(1, exp.rows.num_rows)),
        "policy/distinct2": distinct_n(texts),
        "value/mean": masked_turn_mean(v_turn, mask),
        "value/explained_variance": float(PF.explained_variance(v_turn, exp.returns, exp.turn_mask)),
    }


def sample_records(iteration: int, episodes: list[Episode], components: dict[str, Tensor], limit: int
                   ) -> list[dict]:
    """The first `limit` episodes with each turn's text and reward components."""
    out = []
    for e, ep in enumerate(episodes[:limit]):
        turns = []
        for t, text in enumerate(ep.turn_texts):
            entry = {"text": text, **{k: round(float(components[k][e, t]), 4) for k in COMPONENTS}}
            turns.append(entry)
        conversation = [{"role": u.role, "text": u.text} for u in ep.utterances]
        out.append({"iteration": iteration, "record_id": ep.record.id, "kind": ep.kind,
                    "conversation": conversation, "turns": turns, "final_turn": ep.final_turn})
    return out
