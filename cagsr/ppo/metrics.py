"""Turn a batch's Experience and episodes into logged metrics and readable sample episodes."""

from __future__ import annotations

from torch import Tensor

from cagsr.evaluation.metrics.quality import distinct_n
from cagsr.ppo import functional as PF
from cagsr.ppo.estimators import solo_turn_share
from cagsr.ppo.experience import Experience
from cagsr.reward.combine import LOGGED
from cagsr.rollout.episode import Episode


def masked_turn_mean(values: Tensor, mask: Tensor) -> float:
    return float((values * mask).sum() / mask.sum().clamp_min(1))




def reward_metrics(components: dict[str, Tensor], prefix: str = "reward") -> dict[str, float]:
    mask = components["turn_mask"].float()
    return {f"{prefix}/{k}": masked_turn_mean(components[k], mask) for k in LOGGED}


def experience_metrics(exp: Experience, episodes: list[Episode], critic: bool = True) -> dict[str, float]:
    """Metrics of one batch; `critic` False leaves out the value diagnostics (a critic-free estimator).
    batch/solo_turns is the share of turns whose group had no other member at that turn (advantage 0)."""
    mask = exp.turn_mask.float()
    response = exp.rows.response_mask.float()
    tokens = response.sum().clamp_min(1)
    kl_ref = {f"policy/kl_ref{suffix}": float((PF.kl_penalty(exp.old_logprobs, exp.ref_logprobs, kind) * response
                                                ).sum() / tokens) for suffix, kind in (("", "k1"), ("_k3", "k3"))}
    texts = [t for ep in episodes for t in ep.turn_texts]
    out = {
        **reward_metrics(exp.components),
        "reward/turn_reward": masked_turn_mean(exp.rewards, mask),
        "reward/return": masked_turn_mean(exp.returns, mask),
        "reward/turns_per_episode": float(mask.sum(-1).mean()),
        **kl_ref,  # k1 (policy/kl_ref, can be negative on a sample) and k3 (policy/kl_ref_k3, never negative)
        "policy/response_len": float(response.sum() / max(1, exp.rows.num_rows)),
        "policy/distinct2": distinct_n(texts),
        "policy/advantage_abs": masked_turn_mean(exp.advantages.abs(), mask),
        "batch/groups": float(exp.groups.unique().numel()),
        "batch/solo_turns": float(solo_turn_share(exp.turn_mask, exp.groups)),
    }
    if critic:
        rows = exp.rows
        v_turn = PF.turn_values(exp.old_values, rows.turn_start, rows.row_episode, rows.token_turn,
                                *exp.turn_mask.shape)
        out["value/mean"] = masked_turn_mean(v_turn, mask)
        out["value/explained_variance"] = float(PF.explained_variance(v_turn, exp.returns, exp.turn_mask))
    return out


def sample_records(iteration: int, episodes: list[Episode], components: dict[str, Tensor], limit: int
                   ) -> list[dict]:
    """The first `limit` episodes with each turn's text and reward components."""
    out = []
    for e, ep in enumerate(episodes[:limit]):
        turns = []
        for t, text in enumerate(ep.turn_texts):
            entry = {"text": text, **{k: round(float(components[k][e, t]), 4) for k in LOGGED}}
            turns.append(entry)
        conversation = [{"role": u.role, "text": u.text} for u in ep.utterances]
        out.append({"iteration": iteration, "record_id": ep.record.id, "kind": ep.kind,
                    "conversation": conversation, "turns": turns, "final_turn": ep.final_turn})
    return out
