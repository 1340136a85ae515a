"""The advantage estimators: hand-computed tables with ragged turns, slow reference loops, and a bandit
whose exact policy gradient is known (each estimator's mean gradient against it, within sampling error)."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from cagsr.bench.bandit import BanditSpec, bandit_gradients, batch_gradient, sample_batch
from cagsr.ppo import functional as PF
from cagsr.ppo.estimators import (
    ADVANTAGE_ESTIMATORS,
    compute_advantages,
    grpo_advantages,
    reinforce_pp_advantages,
    rloo_advantages,
    solo_turn_share,
)

NAN = float("nan")
S = 1 / math.sqrt(0.5)  # 1 / the unbiased std of two returns 0.5 apart from their mean


def _close(actual, expected, atol=1e-5):
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype), atol=atol, rtol=0)


# Two groups: episodes 0-2 (the third ends after turn 0) and 3-4 (the second ends after turn 0). Padded
# entries hold NaN, which must not reach any result.
REWARDS = torch.tensor([[1.0, 2.0], [0.0, 1.0], [2.0, NAN], [1.0, 1.0], [3.0, NAN]], dtype=torch.float64)
MASK = torch.tensor([[1, 1], [1, 1], [1, 0], [1, 1], [1, 0]], dtype=torch.bool)
GROUPS = torch.tensor([0, 0, 0, 1, 1])
# Returns G: [[3, 2], [1, 1], [2, 0], [2, 1], [3, 0]].
# Group 0, turn 0: {3, 1, 2}, mean 2, unbiased std 1.  Group 0, turn 1: {2, 1}, mean 1.5, std 1/S.
# Group 1, turn 0: {2, 3}, mean 2.5, std 1/S.            Group 1, turn 1: episode 3 alone -> 0.


def test_grpo_by_hand():
    adv, ret = compute_advantages("grpo", REWARDS, None, MASK, groups=GROUPS)
    _close(ret, [[3, 2], [1, 1], [2, 0], [2, 1], [3, 0]])
    _close(adv, [[1.0, 0.5 * S], [-1.0, -0.5 * S], [0.0, 0.0], [-0.5 * S, 0.0], [0.5 * S, 0.0]])


def test_dr_grpo_by_hand():
    adv, _ = compute_advantages("dr_grpo", REWARDS, None, MASK, groups=GROUPS)
    _close(adv, [[1.0, 0.5], [-1.0, -0.5], [0.0, 0.0], [-0.5, 0.0], [0.5, 0.0]])


def test_rloo_by_hand():
    # Episode 0, turn 0: 3 - (1 + 2) / 2 = 1.5; episode 1: 1 - (3 + 2) / 2 = -1.5; episode 2: 2 - 2 = 0.
    adv, _ = compute_advantages("rloo", REWARDS, None, MASK, groups=GROUPS)
    _close(adv, [[1.5, 1.0], [-1.5, -1.0], [0.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])


def test_reinforce_pp_by_hand():
    # Batch means: turn 0 {3, 1, 2, 2, 3} -> 2.2; turn 1 {2, 1, 1} -> 4/3. The centred values sum to 0 per
    # turn, so the whitening divides by their population std over the 8 real turns.
    centred = [[0.8, 2 / 3], [-1.2, -1 / 3], [-0.2, 0.0], [-0.2, -1 / 3], [0.8, 0.0]]
    real = [0.8, -1.2, -0.2, -0.2, 0.8, 2 / 3, -1 / 3, -1 / 3]
    std = math.sqrt(sum(x * x for x in real) / len(real) + 1e-8)
    adv, _ = compute_advantages("reinforce_pp", REWARDS, None, MASK, groups=GROUPS)
    _close(adv, [[c / std if m else 0.0 for c, m in zip(row, mrow, strict=True)]
                 for row, mrow in zip(centred, MASK.tolist(), strict=True)])


def test_turn_weights_scale_rewards_before_the_group_baseline():
    weights = torch.tensor([[1.0, 2.0]]).expand(5, 2)  # G = R_0 + 2 R_1
    adv, ret = compute_advantages("dr_grpo", REWARDS, None, MASK, weights, groups=GROUPS)
    _close(ret[:2], [[5, 4], [2, 2]])
    _close(adv[:3, 0], [5 - 3, 2 - 3, 2 - 3])  # group 0, turn 0: {5, 2, 2}, mean 3


def test_ties_and_solo_turns_give_zero_not_nan():
    rewards = torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.5, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1], [1, 1], [1, 0]], dtype=torch.bool)
    groups = torch.tensor([0, 0, 1])  # group 0 ties everywhere; group 1 has one member
    for name in ("grpo", "dr_grpo", "rloo"):
        adv, _ = compute_advantages(name, rewards, None, mask, groups=groups)
        assert torch.isfinite(adv).all() and (adv == 0).all(), name
    _close(solo_turn_share(mask, groups), 1 / 5)
    solo = compute_advantages("reinforce_pp", rewards[2:], None, mask[2:])[0]
    assert (solo == 0).all()  # one turn in the whole batch: nothing to compare it with


def test_critic_estimators_need_values_and_unknown_names_fail():
    with pytest.raises(ValueError, match="needs critic values"):
        compute_advantages("return", REWARDS, None, MASK)
    with pytest.raises(ValueError, match="unknown advantage estimator"):
        compute_advantages("vtrace", REWARDS, None, MASK)
    assert set(ADVANTAGE_ESTIMATORS) == {"return", "gae", "grpo", "dr_grpo", "rloo", "reinforce_pp"}


# ---------------------------------------------------------------- slow reference loops


def _reference(name: str, returns: list[list[float]], mask: list[list[bool]], groups: list[int]) -> list[list[float]]:
    e_count, t_count = len(returns), len(returns[0])
    out = [[0.0] * t_count for _ in range(e_count)]
    for t in range(t_count):
        if name == "reinforce_pp":
            members = [e for e in range(e_count) if mask[e][t]]
            if len(members) >= 2:
                mean = statistics.fmean(returns[e][t] for e in members)
                for e in members:
                    out[e][t] = returns[e][t] - mean
            continue
        for e in range(e_count):
            if not mask[e][t]:
                continue
            members = [f for f in range(e_count) if groups[f] == groups[e] and mask[f][t]]
            if len(members) < 2:
                continue
            values = [returns[f][t] for f in members]
            mean = statistics.fmean(values)
            if name == "grpo":
                out[e][t] = (returns[e][t] - mean) / (statistics.stdev(values) + 1e-6)
            elif name == "dr_grpo":
                out[e][t] = returns[e][t] - mean
            else:  # rloo
                out[e][t] = returns[e][t] - statistics.fmean(returns[f][t] for f in members if f != e)
    if name == "reinforce_pp":
        real = [out[e][t] for e in range(e_count) for t in range(t_count) if mask[e][t]]
        mean, var = statistics.fmean(real), statistics.pvariance(real)
        out = [[(out[e][t] - mean) / math.sqrt(var + 1e-8) if mask[e][t] else 0.0 for t in range(t_count)]
               for e in range(e_count)]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_group_estimators_match_reference_loops(seed):
    gen = torch.Generator().manual_seed(seed)
    e_count, t_count = 9, 4
    returns = torch.randn(e_count, t_count, generator=gen, dtype=torch.float64)
    mask = torch.rand(e_count, t_count, generator=gen) < 0.7  # holes and ragged ends, solos included
    mask[0, 0] = mask[1, 0] = True
    groups = torch.randint(3, (e_count,), generator=gen)
    for name, fn in (("grpo", lambda: grpo_advantages(returns, mask, groups)),
                     ("dr_grpo", lambda: grpo_advantages(returns, mask, groups, scale=False)),
                     ("rloo", lambda: rloo_advantages(returns, mask, groups)),
                     ("reinforce_pp", lambda: reinforce_pp_advantages(returns, mask))):
        expected = _reference(name, returns.tolist(), mask.tolist(), groups.tolist())
        _close(fn(), expected, atol=1e-9)


# ---------------------------------------------------------------- the bandit: unbiasedness


def test_bandit_gradient_is_the_gradient_of_the_ppo_loss():
    spec = BanditSpec()
    arms, rewards, mask, groups = sample_batch(spec, torch.Generator().manual_seed(3))
    adv, _ = compute_advantages("rloo", rewards, None, mask, groups=groups)
    theta = torch.tensor(spec.logits, dtype=torch.float64, requires_grad=True)
    logprobs = torch.log_softmax(theta, 0)[arms]
    loss, _ = PF.policy_loss(logprobs, logprobs.detach(), adv, mask, clip_eps=0.2)
    loss.backward()
    expected = -theta.grad * mask.sum() / arms.shape[0]  # the loss is a mean over tokens; ours over episodes
    torch.testing.assert_close(batch_gradient(spec, "rloo", torch.Generator().manual_seed(3)), expected)


# Expected mean gradient as a multiple of the exact one: RLOO and plain REINFORCE are unbiased; the group
# mean of Dr. GRPO includes the episode itself, which scales the gradient by (n - 1) / n.
SCALE = {"return": 1.0, "gae": 1.0, "rloo": 1.0, "dr_grpo": 3 / 4}


@pytest.mark.parametrize("name", sorted(ADVANTAGE_ESTIMATORS))
def test_mean_gradient_matches_the_exact_policy_gradient(name):
    spec = BanditSpec(group_size=4, noise=0.5)
    grads = bandit_gradients(name, spec, batches=3000, seed=11)
    mean, stderr = grads.mean(0), grads.std(0) / math.sqrt(grads.shape[0])
    exact = spec.exact_gradient()
    if name in SCALE:
        # Within 4.5 standard errors in every arm (the draws are seeded, so this is not flaky).
        assert ((mean - SCALE[name] * exact).abs() <= 4.5 * stderr).all(), (name, mean, exact, stderr)
    else:
        # grpo's std division and reinforce_pp's whitening rescale by a batch-dependent factor: the
        # direction is what they keep.
        cosine = torch.nn.functional.cosine_similarity(mean, exact, dim=0)
        assert cosine > 0.98, (name, mean, exact)
