"""Tests of cagsr.ppo.functional: hand-computed numbers, slow references, properties."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cagsr.ppo.estimators import ADVANTAGE_ESTIMATORS, compute_advantages, gae_over_turns, turn_advantages
from cagsr.ppo.functional import (
    broadcast_turn_to_tokens,
    entropy_from_logits,
    explained_variance,
    kl_penalty,
    masked_mean,
    masked_whiten,
    policy_loss,
    turn_returns,
    turn_values,
    turn_weights,
    value_loss,
)

FAST = settings(max_examples=50, deadline=None)
SEEDS = st.integers(0, 2**31 - 1)


def _close(actual: torch.Tensor, expected: list | float) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype), atol=1e-6, rtol=0)


def _rand(seed: int, *shape: int) -> tuple[torch.Tensor, torch.Generator]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64), g


# ---------------------------------------------------------------- hand-computed examples


def test_masked_mean_and_whiten_by_hand() -> None:
    x = torch.tensor([[1.0, 3.0, float("nan")], [5.0, 7.0, 100.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    _close(masked_mean(x, mask), 4.0)
    _close(masked_mean(x, mask, dim=1), [2.0, 6.0])
    _close(masked_mean(x, torch.zeros(2, 3)), 0.0)
    # Mean 4, population variance (9 + 1 + 1 + 9) / 4 = 5.
    whitened = masked_whiten(x, mask)
    s = math.sqrt(5.0 + 1e-8)
    _close(whitened, [[-3 / s, -1 / s, 0.0], [1 / s, 3 / s, 0.0]])
    _close(
        masked_whiten(x, mask, shift_mean=False), [[4 - 3 / s, 4 - 1 / s, 0.0], [4 + 1 / s, 4 + 3 / s, 0.0]]
    )


def test_gae_by_hand() -> None:
    rewards = torch.tensor([[1.0, 0.0, 2.0]])
    values = torch.tensor([[0.5, 1.0, 1.5]])
    # gamma 0.9, lam 0.8, V after the last turn = 0:
    # t=2: delta = 2 - 1.5 = 0.5, A = 0.5
    # t=1: delta = 0 + 0.9 * 1.5 - 1.0 = 0.35, A = 0.35 + 0.72 * 0.5 = 0.71
    # t=0: delta = 1 + 0.9 * 1.0 - 0.5 = 1.4, A = 1.4 + 0.72 * 0.71 = 1.9112
    adv, ret = gae_over_turns(rewards, values, torch.ones(1, 3), gamma=0.9, lam=0.8)
    _close(adv, [[1.9112, 0.71, 0.5]])
    _close(ret, [[2.4112, 1.71, 2.0]])


def test_gae_skips_padded_turns_by_hand() -> None:
    # Same episode with a padded turn in the middle and garbage in it: same numbers.
    rewards = torch.tensor([[1.0, float("nan"), 0.0, 2.0]])
    values = torch.tensor([[0.5, 1e9, 1.0, 1.5]])
    adv, ret = gae_over_turns(rewards, values, torch.tensor([[1, 0, 1, 1]]), gamma=0.9, lam=0.8)
    _close(adv, [[1.9112, 0.0, 0.71, 0.5]])
    _close(ret, [[2.4112, 0.0, 1.71, 2.0]])


def test_return_estimator_by_hand() -> None:
    rewards = torch.tensor([[1.0, 2.0, 3.0]])
    values = torch.tensor([[4.0, 4.0, 4.0]])
    weights = torch.tensor([[1.0, 1.0, 2.0]])
    # G = [1 + 2 + 6, 2 + 6, 6] = [9, 8, 6]; A = G - 4.
    adv, ret = compute_advantages("return", rewards, values, torch.ones(1, 3), weights=weights)
    _close(ret, [[9.0, 8.0, 6.0]])
    _close(adv, [[5.0, 4.0, 2.0]])
    _close(turn_advantages(ret, values, torch.tensor([[1, 1, 0]])), [[5.0, 4.0, 0.0]])
    assert {"return", "gae"} <= set(ADVANTAGE_ESTIMATORS)
    with pytest.raises(ValueError, match="unknown advantage estimator"):
        compute_advantages("vtrace", rewards, values, torch.ones(1, 3))


def test_broadcast_turn_to_tokens_by_hand() -> None:
    turn_values = torch.tensor([[10.0, 20.0, 30.0]])
    token_turn = torch.tensor([[-1, -1, 0, 0, -1, 1, 1, 1, -1, 2, -1]])
    _close(broadcast_turn_to_tokens(turn_values, token_turn), [[0, 0, 10, 10, 0, 20, 20, 20, 0, 30, 0]])


def test_policy_loss_by_hand() -> None:
    old = torch.zeros(1, 3)
    new = torch.tensor([[math.log(1.5), math.log(0.5), 50.0]])  # token 2 is padding
    adv = torch.tensor([[1.0, -1.0, 7.0]])
    mask = torch.tensor([[1, 1, 0]])
    loss, stats = policy_loss(new, old, adv, mask, clip_eps=0.2)
    # Token 0: min(1.5, 1.2) * 1 = 1.2 -> -1.2. Token 1: min(-0.5, -0.8) = -0.8 -> 0.8.
    _close(loss, -0.2)
    _close(stats["clip_frac"], 1.0)
    _close(stats["ratio_mean"], 1.0)
    # k3: ((0.5 - ln 1.5) + (-0.5 - ln 0.5)) / 2.
    _close(stats["approx_kl"], 0.1438410362)


def test_value_loss_by_hand() -> None:
    values = torch.tensor([1.0, 2.0, 3.0])
    old = torch.tensor([0.0, 2.0, 0.0])
    returns = torch.tensor([2.0, 1.0, 0.0])
    mask = torch.tensor([1, 1, 0])
    # Entry 0: max((1-2)^2, (0.5-2)^2) = 2.25; entry 1: 1. 0.5 * mean = 0.8125.
    loss, stats = value_loss(values, old, returns, mask, clip_eps=0.5)
    _close(loss, 0.8125)
    _close(stats["clip_frac"], 0.5)
    loss, _ = value_loss(values, old, returns, mask, clip_eps=None)
    _close(loss, 0.5)


def test_kl_penalty_by_hand() -> None:
    lp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    _close(kl_penalty(lp, ref, "k1"), [math.log(2.0)])
    _close(kl_penalty(lp, ref, "k2"), [0.5 * math.log(2.0) ** 2])
    _close(kl_penalty(lp, ref, "k3"), [(0.5 - 1) + math.log(2.0)])  # r = ref/pi = 0.5
    with pytest.raises(ValueError):
        kl_penalty(lp, ref, "k9")  # type: ignore[arg-type]


def test_explained_variance_by_hand() -> None:
    returns = torch.tensor([1.0, 2.0, 3.0, 50.0])
    mask = torch.tensor([1, 1, 1, 0])
    _close(explained_variance(returns, returns, mask), 1.0)
    _close(explained_variance(torch.full((4,), 2.0), returns, mask), 0.0)
    assert torch.isnan(explained_variance(returns, torch.ones(4), mask))


def test_entropy_from_logits_by_hand() -> None:
    logits = torch.tensor(
        [[0.0, 0.0, 0.0, 0.0], [1e4, 0.0, float("-inf"), float("-inf")], [3.0, 3.0, -math.inf, 0.0]]
    )
    p = torch.tensor([math.e**3, math.e**3, 1.0]) / (2 * math.e**3 + 1)
    _close(entropy_from_logits(logits), [math.log(4.0), 0.0, float(-(p * p.log()).sum())])


# ---------------------------------------------------------------- slow references


def _slow_gae(rewards: list[float], values: list[float], mask: list[bool], gamma: float, lam: float):
    adv = [0.0] * len(rewards)
    next_value, next_adv = 0.0, 0.0
    for t in range(len(rewards) - 1, -1, -1):
        if not mask[t]:
            continue
        delta = rewards[t] + gamma * next_value - values[t]
        next_adv = delta + gamma * lam * next_adv
        next_value = values[t]
        adv[t] = next_adv
    return adv, [a + v if m else 0.0 for a, v, m in zip(adv, values, mask, strict=True)]


@FAST
@given(seed=SEEDS, b=st.integers(1, 4), t=st.integers(1, 6), gamma=st.floats(0, 1), lam=st.floats(0, 1))
def test_gae_matches_slow_loop(seed: int, b: int, t: int, gamma: float, lam: float) -> None:
    rewards, g = _rand(seed, b, t)
    values = torch.randn(b, t, generator=g, dtype=torch.float64)
    mask = torch.rand(b, t, generator=g) < 0.75
    adv, ret = gae_over_turns(rewards, values, mask, gamma, lam)
    for i in range(b):
        slow_adv, slow_ret = _slow_gae(rewards[i].tolist(), values[i].tolist(), mask[i].tolist(), gamma, lam)
        torch.testing.assert_close(adv[i], torch.tensor(slow_adv, dtype=torch.float64))
        torch.testing.assert_close(ret[i], torch.tensor(slow_ret, dtype=torch.float64))


@FAST
@given(seed=SEEDS, b=st.integers(1, 4), t=st.integers(1, 6))
def test_gae_with_unit_gamma_lambda_equals_the_return_estimator(seed: int, b: int, t: int) -> None:
    rewards, g = _rand(seed, b, t)
    values = torch.randn(b, t, generator=g, dtype=torch.float64)
    weights = torch.rand(b, t, generator=g, dtype=torch.float64) + 0.5
    mask = torch.rand(b, t, generator=g) < 0.75
    adv_gae, ret_gae = compute_advantages("gae", rewards, values, mask, weights, gamma=1.0, lam=1.0)
    adv_ret, ret_ret = compute_advantages("return", rewards, values, mask, weights)
    torch.testing.assert_close(adv_gae, adv_ret)
    torch.testing.assert_close(ret_ret, turn_returns(rewards, weights, mask))
    torch.testing.assert_close(ret_gae, ret_ret)


@FAST
@given(seed=SEEDS, b=st.integers(1, 4), s=st.integers(1, 12))
def test_whiten_matches_slow_loop(seed: int, b: int, s: int) -> None:
    x, g = _rand(seed, b, s)
    x = x * 3 + 1
    mask = torch.rand(b, s, generator=g) < 0.7
    picked = [v for v, m in zip(x.flatten().tolist(), mask.flatten().tolist(), strict=True) if m]
    mean = sum(picked) / max(1, len(picked))
    var = sum((v - mean) ** 2 for v in picked) / max(1, len(picked))
    expected = [
        [(x[i, j].item() - mean) / math.sqrt(var + 1e-8) if mask[i, j] else 0.0 for j in range(s)]
        for i in range(b)
    ]
    torch.testing.assert_close(masked_whiten(x, mask), torch.tensor(expected, dtype=torch.float64))
    if len(picked) > 1:
        whitened = masked_whiten(x, mask)[mask]
        assert abs(whitened.mean().item()) < 1e-9


@FAST
@given(seed=SEEDS, b=st.integers(1, 4), s=st.integers(1, 12), eps=st.floats(0.05, 0.5))
def test_policy_loss_matches_slow_loop(seed: int, b: int, s: int, eps: float) -> None:
    old, g = _rand(seed, b, s)
    new = old + 0.5 * torch.randn(b, s, generator=g, dtype=torch.float64)
    adv = torch.randn(b, s, generator=g, dtype=torch.float64)
    mask = torch.rand(b, s, generator=g) < 0.7
    terms, clipped, kls, ratios = [], [], [], []
    for i in range(b):
        for j in range(s):
            if not mask[i, j]:
                continue
            r = math.exp(new[i, j].item() - old[i, j].item())
            a = adv[i, j].item()
            terms.append(-min(r * a, min(max(r, 1 - eps), 1 + eps) * a))
            clipped.append(float(-a * min(max(r, 1 - eps), 1 + eps) > -a * r))
            kls.append((r - 1) - math.log(r))
            ratios.append(r)
    loss, stats = policy_loss(new, old, adv, mask, eps)

    def mean(v: list[float]) -> float:
        return sum(v) / len(v) if v else 0.0

    _close(loss, mean(terms))
    _close(stats["clip_frac"], mean(clipped))
    _close(stats["approx_kl"], mean(kls))
    _close(stats["ratio_mean"], mean(ratios))


# ---------------------------------------------------------------- properties


@FAST
@given(seed=SEEDS, b=st.integers(1, 3), s=st.integers(1, 8), extra=st.integers(1, 4))
def test_padding_never_changes_the_losses(seed: int, b: int, s: int, extra: int) -> None:
    old, g = _rand(seed, b, s)
    new = old + 0.3 * torch.randn(b, s, generator=g, dtype=torch.float64)
    adv = torch.randn(b, s, generator=g, dtype=torch.float64)
    mask = torch.rand(b, s, generator=g) < 0.7

    def pad(x: torch.Tensor, value: float) -> torch.Tensor:
        return torch.cat([x, torch.full((b, extra), value, dtype=x.dtype)], 1)

    padded_mask = torch.cat([mask, torch.zeros(b, extra, dtype=torch.bool)], 1)
    loss, stats = policy_loss(new, old, adv, mask, 0.2)
    loss_p, stats_p = policy_loss(pad(new, 1e6), pad(old, -1e6), pad(adv, float("nan")), padded_mask, 0.2)
    torch.testing.assert_close(loss_p, loss)
    for key, value in stats.items():
        torch.testing.assert_close(stats_p[key], value)
    v_loss, _ = value_loss(new, old, adv, mask, 0.2)
    v_loss_p, _ = value_loss(pad(new, float("inf")), pad(old, 0.0), pad(adv, float("nan")), padded_mask, 0.2)
    torch.testing.assert_close(v_loss_p, v_loss)


@FAST
@given(seed=SEEDS, shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 20)))
def test_entropy_from_logits_matches_softmax_and_bounds(seed: int, shape: tuple[int, int, int]) -> None:
    logits, _ = _rand(seed, *shape)
    logits = logits * 10
    p = logits.softmax(-1)
    entropy = entropy_from_logits(logits)
    torch.testing.assert_close(entropy, -(p * p.log()).nan_to_num().sum(-1))
    assert (entropy >= -1e-9).all() and (entropy <= math.log(shape[-1]) + 1e-9).all()


@FAST
@given(seed=SEEDS, n=st.integers(1, 20))
def test_k3_is_never_negative(seed: int, n: int) -> None:
    lp, g = _rand(seed, n)
    ref = torch.randn(n, generator=g, dtype=torch.float64)
    assert (kl_penalty(lp, ref, "k3") >= 0).all()
    assert (kl_penalty(lp, ref, "k2") >= 0).all()


# ---------------------------------------------------------------- turn weights, returns and values
def test_turn_weights_and_returns_by_hand() -> None:
    turn_mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    final = torch.tensor([[0, 0, 1], [0, 1, 0]])
    weights = turn_weights(turn_mask, final, final_weight=2.0)
    _close(weights, [[1.0, 1.0, 2.0], [1.0, 2.0, 0.0]])
    _close(turn_weights(turn_mask, final, final_weight=1.0), [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    rewards = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, float("nan")]])
    # Row 0: weighted rewards 1, 2, 6 -> G = 9, 8, 6. Row 1: 1, 4, pad -> 5, 4, 0.
    _close(turn_returns(rewards, weights, turn_mask), [[9.0, 8.0, 6.0], [5.0, 4.0, 0.0]])


def test_turn_values_are_read_at_turn_starts() -> None:
    # Two rows of episode 1 (turns 0 and 1) and one row of episode 0 (a two-step chain of thought).
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0], [6.0, 7.0, 8.0]])
    token_turn = torch.tensor([[0, 0, 0], [1, 1, -1], [0, 1, 1]])
    turn_start = torch.tensor([[True, False, False], [True, False, False], [True, True, False]])
    out = turn_values(values, turn_start, torch.tensor([1, 1, 0]), token_turn, n_episodes=2, n_turns=3)
    _close(out, [[6.0, 7.0, 0.0], [1.0, 4.0, 0.0]])


def _slow_returns(rewards: list[float], weights: list[float], mask: list[bool]) -> list[float]:
    out = []
    for t in range(len(rewards)):
        total = sum(weights[u] * rewards[u] for u in range(t, len(rewards)) if mask[u])
        out.append(total if mask[t] else 0.0)
    return out


@FAST
@given(seed=st.integers(0, 2**31 - 1), b=st.integers(1, 4), t=st.integers(1, 6))
def test_returns_match_slow_loop(seed: int, b: int, t: int) -> None:
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(b, t, generator=g, dtype=torch.float64)
    turn_mask = torch.rand(b, t, generator=g) < 0.8
    final = torch.zeros(b, t, dtype=torch.bool)
    final[:, -1] = True
    weights = turn_weights(turn_mask, final, 3.0).double()
    fast = turn_returns(rewards, weights, turn_mask)
    for i in range(b):
        expected = _slow_returns(rewards[i].tolist(), weights[i].tolist(), turn_mask[i].tolist())
        torch.testing.assert_close(fast[i], torch.tensor(expected, dtype=torch.float64))
