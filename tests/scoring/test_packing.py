"""Packed episodes = per-turn rows: one pass per dialogue gives the same numbers as one pass per turn.

For dialogues and chains of thought, with the window and pruning controls off and on, the packed
layout and the per-turn layout (both padding-free), and today's padded rows, give the same log-probs,
abar, reward components, returns, advantages, losses and gradients of one PPO minibatch (float32).
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from cagsr.attention import forward_with_capture
from cagsr.attention.config import AttentionConfig
from cagsr.data.config import DataConfig
from cagsr.data.sources import corpus_texts, load_records
from cagsr.models import load_model
from cagsr.ppo.config import PPOConfig
from cagsr.ppo.critic import ValueHead
from cagsr.ppo.experience import assemble
from cagsr.ppo.update import Learner, _totals, pass_loss
from cagsr.reward.combine import AttentionWeights, attention_reward
from cagsr.reward.config import RewardConfig
from cagsr.rollout.recorded import recorded_episodes
from cagsr.salience.masks import Salience
from cagsr.scoring.config import ScoringConfig
from cagsr.scoring.layout import plan_passes, sequence_groups, unpacked_turns
from cagsr.scoring.passes import ScoredPart, rows_logprobs, score_rows
from cagsr.scoring.rows import build_rows

STAR = "../shared/data/star_dialogues.jsonl"
# 30 float32 layers over differently shaped matmuls: a CI CPU put one of 231 log-probs 3.6e-5 apart,
# far below what a wrong mask or position id does to them.
SMOLLM2_TOLERANCE = {"atol": 2e-4, "rtol": 1e-4}
CONTROLS = {
    "plain": AttentionConfig(),
    "window": AttentionConfig(window=24),
    "pruned": AttentionConfig(prune_above=40, prune_threshold=0.02),
    "both": AttentionConfig(last_layers=2, window=32, prune_above=40, prune_threshold=0.02),
}


def _episodes(loaded, kind: str, count: int):
    if kind == "dialogue":
        records = load_records(DataConfig(path="generated:dialogue", num_generated=count, seed=3))
        return recorded_episodes(records, loaded, max_context=384, max_turns=4), records
    records = load_records(DataConfig(path="generated:math", num_generated=count, seed=5))
    return recorded_episodes(records, loaded, max_context=256, max_steps=6), records


def _setup(name: str, kind: str, count: int = 6):
    torch.manual_seed(0)
    loaded = load_model(name)
    loaded.model.float().eval()
    episodes, records = _episodes(loaded, kind, count)
    salience = Salience.fit(corpus_texts(records), "idf|entities|keywords", 0.7)
    rows = build_rows(episodes, loaded, salience)
    return loaded, episodes, rows


@pytest.fixture(scope="module", params=["dialogue", "math"])
def tiny(request):
    return (*_setup("tiny-llama", request.param), request.param)


def _score(loaded, rows, episodes, attention, layout, budget=4096, head=None):
    scoring = ScoringConfig(layout=layout, token_budget=budget)
    return score_rows(loaded.model, rows, n_episodes=len(episodes), n_turns=max(e.num_turns for e in episodes),
                      attention=attention, reward=RewardConfig(), scoring=scoring, value_head=head)


def test_dialogue_turns_continue_each_other_and_pack_into_one_sequence_each(tiny):
    loaded, episodes, rows, kind = tiny
    groups = sequence_groups(rows, "packed")
    assert len(groups) == len(episodes)  # every episode is one sequence
    assert unpacked_turns(rows) == 0
    assert rows.num_rows > len(episodes)  # ... of several turns
    turns = sequence_groups(rows, "turns")
    assert len(turns) == rows.num_rows


@pytest.mark.parametrize("control", list(CONTROLS))
def test_packed_and_per_turn_rows_score_the_same(tiny, control):
    loaded, episodes, rows, kind = tiny
    attention = CONTROLS[control]
    head = ValueHead(loaded.model.config.hidden_size)
    torch.nn.init.normal_(head.proj.weight, std=0.1)
    packed = _score(loaded, rows, episodes, attention, "packed", head=head)
    turns = _score(loaded, rows, episodes, attention, "turns", budget=300, head=head)
    mask = rows.response_mask
    torch.testing.assert_close(packed.logprobs[mask], turns.logprobs[mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(packed.values[mask], turns.values[mask], atol=1e-5, rtol=1e-5)
    for key, value in turns.components.items():
        torch.testing.assert_close(packed.components[key], value, atol=1e-5, rtol=1e-5, msg=key)


@pytest.mark.parametrize("control", ["plain", "both"])
def test_packed_abar_equals_the_padded_rows_of_today(tiny, control):
    """The capture of a packed dialogue, turn by turn, equals the padded per-turn batch's."""
    loaded, episodes, rows, kind = tiny
    attention = CONTROLS[control]
    kwargs = dict(last_layers=attention.last_layers, window=attention.window, prune_above=attention.prune_above,
                  prune_threshold=attention.prune_threshold, prune_keep=rows.salient_mask)
    (part,) = plan_passes(rows, layout="packed", token_budget=100_000, pad_id=0, encoder_decoder=False)
    assert torch.equal(part.rows, torch.arange(rows.num_rows))
    assert part.batch.input_ids.shape[0] * part.batch.input_ids.shape[1] < rows.history_ids.numel()
    with torch.no_grad():
        got = forward_with_capture(loaded.model, part.batch, **kwargs)
        ref = forward_with_capture(loaded.model, rows.batch, **kwargs)
    mask = rows.response_mask
    torch.testing.assert_close(got.abar[mask], ref.abar[mask], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.history_mass[mask], ref.history_mass[mask], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.logits[mask], ref.logits[mask], atol=1e-4, rtol=1e-4)
    if ref.kept_index is not None:
        assert torch.equal(got.kept_index, ref.kept_index)


def _minibatch_gradient(loaded, rows, episodes, layout, budget):
    """Loss and gradients of one PPO minibatch (all episodes) with Experience scored in `layout`."""
    attention, scoring = AttentionConfig(), ScoringConfig(layout=layout, token_budget=budget)
    policy = copy.deepcopy(loaded.model)
    head = ValueHead(policy.config.hidden_size)
    torch.nn.init.normal_(head.proj.weight, std=0.1, generator=torch.Generator().manual_seed(1))
    reference = copy.deepcopy(policy)
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    scores = _score(loaded, rows, episodes, attention, layout, budget, head)
    scored = ScoredPart(old_logprobs=scores.logprobs, ref_logprobs=rows_logprobs(reference, rows, scoring),
                        values=scores.values, rewards=attention_reward(scores.components, AttentionWeights()),
                        components=scores.components)
    exp = assemble(rows=rows, episodes=episodes, scored=scored, ppo=PPOConfig(), final_weight=2.0)
    # Leave the rollout policy a little: ratios, clipping and KL are not all at their trivial values.
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.005 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel() + 7)))
    learner = Learner(policy=policy, critic=head, critic_is_head=True, optimizer=None, scheduler=None)
    everything = torch.arange(rows.num_rows)
    totals, losses = _totals(exp, everything), 0.0
    for part in plan_passes(rows, layout=layout, token_budget=budget, pad_id=0, encoder_decoder=False):
        loss, _ = pass_loss(learner, exp, part, PPOConfig(), totals)
        loss.backward()
        losses += float(loss)
    grads = [p.grad.clone() for p in [*policy.parameters(), *head.parameters()]]
    return exp, losses, grads


def test_packed_minibatch_gives_the_per_turn_loss_and_gradient(tiny):
    loaded, episodes, rows, kind = tiny
    exp_p, loss_p, grads_p = _minibatch_gradient(loaded, rows, episodes, "packed", 4096)
    exp_t, loss_t, grads_t = _minibatch_gradient(loaded, rows, episodes, "turns", 200)
    for name in ("rewards", "returns", "advantages"):
        torch.testing.assert_close(getattr(exp_p, name), getattr(exp_t, name), atol=1e-5, rtol=1e-5, msg=name)
    mask = rows.response_mask
    torch.testing.assert_close(exp_p.token_advantages[mask], exp_t.token_advantages[mask], atol=1e-5, rtol=1e-5)
    assert loss_p == pytest.approx(loss_t, abs=1e-5)
    for a, b in zip(grads_p, grads_t, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert any(float(g.abs().sum()) > 0 for g in grads_p)


def test_a_history_cut_to_fit_the_context_gets_its_own_sequence():
    loaded = load_model("tiny-llama")
    records = load_records(DataConfig(path=STAR, limit=4))
    salience = Salience.fit(corpus_texts(records), "idf", 0.7)
    full = build_rows(recorded_episodes(records, loaded, max_context=4096, max_turns=6), loaded, salience)
    cut = build_rows(recorded_episodes(records, loaded, max_context=160, max_turns=6), loaded, salience)
    assert unpacked_turns(full) == 0
    assert unpacked_turns(cut) > 0  # the oldest turns were dropped: not a continuation
    assert len(sequence_groups(cut, "packed")) == len(records) + unpacked_turns(cut)


def test_every_pass_stays_within_the_token_budget(tiny):
    loaded, episodes, rows, kind = tiny
    budget = 256
    passes = plan_passes(rows, layout="turns", token_budget=budget, pad_id=0, encoder_decoder=False)
    assert sorted(torch.cat([p.rows for p in passes]).tolist()) == list(range(rows.num_rows))
    for part in passes:
        alone = part.sequences == 1
        assert part.batch.real_tokens <= budget or alone


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dialogue", "math"])
def test_smollm2_packed_equals_per_turn_rows(kind):
    loaded, episodes, rows = _setup("smollm2-135m", kind, count=3)
    assert unpacked_turns(rows) == 0
    for control in ("plain", "both"):
        packed = _score(loaded, rows, episodes, CONTROLS[control], "packed")
        turns = _score(loaded, rows, episodes, CONTROLS[control], "turns", budget=600)
        mask = rows.response_mask
        torch.testing.assert_close(packed.logprobs[mask], turns.logprobs[mask], **SMOLLM2_TOLERANCE)
        for key, value in turns.components.items():
            torch.testing.assert_close(packed.components[key], value, msg=key, **SMOLLM2_TOLERANCE)
    exp_p, loss_p, grads_p = _minibatch_gradient(loaded, rows, episodes, "packed", 8192)
    exp_t, loss_t, grads_t = _minibatch_gradient(loaded, rows, episodes, "turns", 600)
    torch.testing.assert_close(exp_p.advantages, exp_t.advantages, **SMOLLM2_TOLERANCE)
    assert loss_p == pytest.approx(loss_t, abs=SMOLLM2_TOLERANCE["atol"])
    for a, b in zip(grads_p, grads_t, strict=True):
        # per tensor, not per element (one thread put a 0.008 entry 1.1e-5 apart); measured relative error <= 2.2e-5
        assert float((a - b).norm()) <= 1e-3 * float(b.norm()) + 1e-8


def test_the_layout_field_is_validated():
    with pytest.raises(Exception, match="token_budget"):
        ScoringConfig(token_budget=0)
    assert dataclasses.asdict(ScoringConfig())["layout"] == "packed"


def test_pass_rows_come_back_in_row_order_for_a_subset(tiny):
    loaded, episodes, rows, kind = tiny
    subset = rows.rows_of_episodes(torch.tensor([len(episodes) - 1, 0]))
    passes = plan_passes(rows, layout="packed", token_budget=4096, pad_id=0, encoder_decoder=False, index=subset)
    assert torch.cat([p.rows for p in passes]).tolist() == subset.tolist()
