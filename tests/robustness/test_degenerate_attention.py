"""Property tests: degenerate attention (one-token history, no salient token, all mass on one token,
fully masked rows) gives finite reward components and finite, whitenable advantages, so the NaN
guard never has to fire on them."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cagsr.attention.capture import CaptureResult
from cagsr.ppo import functional as PF
from cagsr.ppo.estimators import ADVANTAGE_ESTIMATORS, compute_advantages
from cagsr.reward.attention_reward import COMPONENTS, turn_components
from cagsr.reward.combine import attention_weights, with_attention_reward
from cagsr.reward.config import RewardConfig

DEGENERATE = (
    "one_token_history",
    "no_salient",
    "one_hot",
    "masked_history_row",
    "masked_response_row",
    "zeros",
)


@st.composite
def batches(draw):
    kind = draw(st.sampled_from(DEGENERATE))
    rows, s = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    n = 1 if kind == "one_token_history" else draw(st.integers(1, 8))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    hist_len = torch.tensor([draw(st.integers(1, n)) for _ in range(rows)])
    resp_len = torch.tensor([draw(st.integers(1, s)) for _ in range(rows)])
    if kind == "masked_history_row":
        hist_len[0] = 0
    if kind == "masked_response_row":
        resp_len[0] = 0
    history_mask = torch.arange(n)[None, :] >= (n - hist_len)[:, None]  # left padded
    response_mask = torch.arange(s)[None, :] < resp_len[:, None]  # right padded
    abar = torch.rand(rows, s, n, generator=g) * history_mask[:, None, :]
    if kind == "one_hot":
        abar = torch.zeros_like(abar)
        abar[:, :, n - 1] = 1.0  # the last history token is always real when the row has any
    if kind == "zeros":
        abar = torch.zeros_like(abar)
    abar = abar / abar.sum(-1, keepdim=True).clamp_min(1e-12)
    salient = torch.rand(rows, n, generator=g) < 0.5
    if kind == "no_salient":
        salient = torch.zeros_like(salient)
    split = draw(st.integers(0, s))  # two turns in one row (chain-of-thought steps) or one
    token_turn = torch.where(torch.arange(s) < split, 0, 1).expand(rows, s).clone()
    token_turn[~response_mask] = -1
    capture = CaptureResult(
        logits=torch.zeros(rows, s, 3),
        hidden=torch.zeros(rows, s, 2),
        abar=abar,
        history_mass=torch.rand(rows, s, generator=g) * response_mask,
        kept_index=None,
    )
    ids = dict(
        history_ids=torch.randint(0, 4, (rows, n), generator=g),
        response_ids=torch.randint(0, 4, (rows, s), generator=g),
    )
    cot = torch.tensor([draw(st.booleans()) for _ in range(rows)])
    return kind, capture, ids, history_mask, response_mask, salient, token_turn, cot


@settings(max_examples=150, deadline=None)
@given(batch=batches(), block_tokens=st.sampled_from([0, 2]), tau0=st.sampled_from([1.0, -math.inf]))
def test_degenerate_attention_gives_finite_rewards_and_advantages(batch, block_tokens, tau0):
    kind, capture, ids, history_mask, response_mask, salient, token_turn, cot = batch
    cfg = RewardConfig(block_tokens=block_tokens, tau0=tau0)
    out = turn_components(
        capture,
        history_ids=ids["history_ids"],
        history_mask=history_mask,
        response_ids=ids["response_ids"],
        response_mask=response_mask,
        salient_mask=salient,
        current_mask=history_mask,
        template_mask=torch.zeros_like(history_mask),
        special_mask=torch.zeros_like(history_mask),
        token_turn=token_turn,
        is_cot=cot,
        cfg=cfg,
    )
    out = with_attention_reward(out, attention_weights(cfg))
    for key in (*COMPONENTS, "reward"):
        assert torch.isfinite(out[key]).all(), (kind, key)
    mask = out["turn_mask"]
    n_valid = history_mask.sum(-1).clamp_min(1).float()
    assert (out["coverage"] >= 0).all() and (out["coverage"] <= 1 + 1e-5).all()
    assert (out["entropy"] >= -1e-6).all() and (out["entropy"] <= n_valid.log()[:, None] + 1e-5).all()
    assert (out["repetition"] >= 0).all() and (out["repetition"] <= 1).all()
    assert (out["clamped_fraction"] >= 0).all() and (out["clamped_fraction"] <= 1).all()
    if tau0 == -math.inf:
        assert (out["clamped_fraction"] == 0).all()  # no floor: the clamp never binds
    empty = ~response_mask.any(-1)
    assert not mask[empty].any() and (out["reward"][empty] == 0).all()  # a fully masked row earns nothing
    if kind == "no_salient":
        assert (out["coverage"] == 0).all()
    if kind in ("one_hot", "one_token_history"):
        assert (out["entropy"][mask] <= 1e-6).all()  # all mass on one token: zero entropy
        if tau0 > 0 and block_tokens == 0:
            assert (out["clamped_fraction"][mask] == 1).all()  # zero entropy lies below every positive floor
    rewards = torch.where(mask, out["reward"], torch.zeros_like(out["reward"]))
    groups = torch.arange(rewards.shape[0]) // 2  # pairs of episodes: the group estimators see ties and solos
    for estimator in ADVANTAGE_ESTIMATORS:
        adv, ret = compute_advantages(
            estimator, rewards, torch.zeros_like(rewards), mask, groups=groups, gamma=1.0, lam=0.95
        )
        assert torch.isfinite(adv).all() and torch.isfinite(ret).all()
        if int(mask.sum()) > 1:  # the trainer whitens only then; constant rewards must not divide by zero
            assert torch.isfinite(PF.masked_whiten(adv, mask)).all()
