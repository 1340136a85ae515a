"""The head-probe reward: per-turn means of per-head features, the linear score, its settings."""

from __future__ import annotations

import pytest
import torch

from cagsr.attention.heads import HeadStats
from cagsr.errors import ConfigError
from cagsr.reward.combine import build_turn_reward
from cagsr.reward.config import RewardConfig
from cagsr.reward.head_probe import HeadProbeConfig, probe_score, turn_head_features, turn_mean_lookback


def stats() -> HeadStats:
    # One row, three steps, heads (0,0) and (1,2); history of 2 tokens.
    hist = torch.tensor([[[0.6, 0.2], [0.5, 0.4], [0.2, 0.1]]])
    own = torch.tensor([[[0.0, 0.0], [0.4, 0.2], [0.8, 0.9]]])
    ent = torch.tensor([[[0.1, 0.3], [0.2, 0.6], [0.3, 0.9]]])
    zeros = torch.zeros_like(hist)
    return HeadStats(heads=((0, 0), (1, 2)), history_mass=hist, self_mass=own, entropy=ent, first_mass=zeros,
                     top=zeros.long(), n_history=torch.tensor([2]))


def test_turn_features_average_the_turn_tokens_by_hand():
    seg = torch.tensor([[False, True, True]])  # the turn is steps 1 and 2
    got = turn_head_features(stats(), seg, ((1, 2), (0, 0)), ["entropy", "lookback"])
    # entropy: head (1,2) (0.6+0.9)/2, head (0,0) (0.2+0.3)/2
    # lookback (0,0): step1 (0.25)/(0.25+0.4)=0.384615, step2 (0.1)/(0.1+0.4)=0.2
    # lookback (1,2): step1 0.2/(0.2+0.2)=0.5, step2 0.05/(0.05+0.45)=0.1
    want = torch.tensor([[0.75, 0.25, (0.5 + 0.1) / 2, (0.25 / 0.65 + 0.2) / 2]])
    assert torch.allclose(got, want)


def test_mean_lookback_per_turn_by_hand():
    token_turn = torch.tensor([[0, 1, 1]])  # turn 0: step 0 (no own tokens yet: ratio 1); turn 1: steps 1-2
    got = turn_mean_lookback(stats(), torch.ones(1, 3, dtype=torch.bool), token_turn, [0, 1, 2])
    # turn 1, mean over the heads of the hand values above: ((0.25/0.65 + 0.2)/2 + (0.5 + 0.1)/2) / 2
    want = torch.tensor([[1.0, ((0.25 / 0.65 + 0.2) / 2 + 0.3) / 2, 0.0]])  # turn 2: no tokens
    assert torch.allclose(got, want)


def test_probe_score_standardises_then_weighs():
    cfg = HeadProbeConfig(heads="0.0,1.2", features=["lookback"], weights=[2.0, -1.0], bias=0.5,
                          mean=[0.1, 0.2], scale=[0.5, 0.1])
    x = torch.tensor([[0.6, 0.3], [0.1, 0.2]])
    # ((0.6-0.1)/0.5)*2 - ((0.3-0.2)/0.1)*1 + 0.5 = 2 - 1 + 0.5; second row: 0 + 0 + 0.5
    assert torch.allclose(probe_score(x, cfg), torch.tensor([1.5, 0.5]))


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="expected 2"):
        HeadProbeConfig(heads="0.0,1.2", weights=[1.0], mean=[0.0], scale=[1.0])
    with pytest.raises(ConfigError, match="features"):
        HeadProbeConfig(features=["nope"])
    with pytest.raises(ConfigError, match="scale"):
        HeadProbeConfig(heads="0.0", weights=[1.0], mean=[0.0], scale=[0.0])
    with pytest.raises(ConfigError, match="fitted probe"):
        RewardConfig(kind="head_probe")
    with pytest.raises(ConfigError, match="reward.kind: head_probe"):
        build_turn_reward(RewardConfig(parts=["attention", "head_probe"]))
    probe = HeadProbeConfig(heads="0.0", weights=[1.0], mean=[0.0], scale=[1.0])
    reward = build_turn_reward(RewardConfig(kind="head_probe", head_probe=probe))
    assert reward.attention_only  # computed by the capture pass, like the attention reward
