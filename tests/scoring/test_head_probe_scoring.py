"""The head-probe score of score_rows, packed or per turn, equals the probe applied to each turn's per-head
features read from a plain padded capture of that turn's row."""

from __future__ import annotations

import pytest
import torch

from cagsr.attention import forward_with_capture
from cagsr.attention.config import AttentionConfig
from cagsr.attention.heads import HeadRequest, all_heads, format_heads
from cagsr.data.config import DataConfig
from cagsr.data.sources import corpus_texts, load_records
from cagsr.models import load_model
from cagsr.reward.combine import AttentionWeights, attention_reward
from cagsr.reward.config import RewardConfig
from cagsr.reward.head_probe import HeadProbeConfig, probe_score, turn_head_features
from cagsr.rollout.recorded import recorded_episodes
from cagsr.salience.masks import Salience
from cagsr.scoring.config import ScoringConfig
from cagsr.scoring.passes import score_rows
from cagsr.scoring.rows import build_rows


@pytest.mark.parametrize("layout", ["packed", "turns"])
def test_head_probe_reward_of_every_turn(layout):
    torch.manual_seed(0)
    loaded = load_model("tiny-llama")
    records = load_records(DataConfig(path="generated:dialogue", num_generated=3, seed=3))
    episodes = recorded_episodes(records, loaded, max_context=256, max_turns=3)
    rows = build_rows(episodes, loaded, Salience.fit(corpus_texts(records), "idf", 0.7))
    heads = all_heads(2, loaded.model.config.num_attention_heads)[1::3]
    d = 2 * len(heads)
    probe = HeadProbeConfig(heads=format_heads(heads), features=["lookback", "entropy"],
                            weights=torch.linspace(-1, 1, d).tolist(), bias=0.3,
                            mean=[0.1] * d, scale=[0.5] * d)
    reward = RewardConfig(kind="head_probe", head_probe=probe)
    got = score_rows(loaded.model, rows, n_episodes=len(episodes), n_turns=3, attention=AttentionConfig(),
                     reward=reward, scoring=ScoringConfig(layout=layout)).components
    cap = forward_with_capture(loaded.model, rows.batch, heads=HeadRequest(features=heads))
    checked = 0
    for r in range(rows.num_rows):
        for turn in rows.token_turn[r][rows.response_mask[r]].unique().tolist():
            seg = (rows.response_mask & (rows.token_turn == turn))[r : r + 1]
            stats = type(cap.head_stats)(heads=heads, n_history=cap.head_stats.n_history[r : r + 1],
                                         **{k: getattr(cap.head_stats, k)[r : r + 1] for k in
                                            ("history_mass", "self_mass", "entropy", "first_mass", "top")})
            want = probe_score(turn_head_features(stats, seg, heads, probe.features), probe)
            assert torch.allclose(got["head_probe"][rows.row_episode[r], turn], want[0], atol=1e-4)
            checked += 1
    assert checked >= 6 and bool(got["turn_mask"].sum() == checked)
    # The reward stage takes the probe's score as the capture pass's reward, not the weighted components.
    assert torch.equal(attention_reward(got, AttentionWeights()), got["head_probe"] * got["turn_mask"])
