"""assemble by hand: turn rewards -> weighted returns -> advantages -> every token's turn advantage."""

from __future__ import annotations

import torch

from cagsr.ppo.config import PPOConfig
from cagsr.ppo.experience import assemble
from cagsr.rollout.episode import Episode
from cagsr.scoring.passes import ScoredPart
from cagsr.scoring.rows import RowBatch


def _rows() -> RowBatch:
    # Episode 0: two rows (turns 0 and 1, 2 tokens each); episode 1: one row holding turn 0 (3 tokens).
    token_turn = torch.tensor([[0, 0, -1], [1, 1, -1], [0, 0, 0]])
    response_mask = token_turn >= 0
    n = 2
    zeros_n = torch.zeros(3, n, dtype=torch.bool)
    return RowBatch(history_ids=torch.zeros(3, n, dtype=torch.long), history_mask=~zeros_n, salient_mask=zeros_n,
                    current_mask=zeros_n, template_mask=zeros_n, special_mask=zeros_n,
                    response_ids=torch.zeros(3, 3, dtype=torch.long), response_mask=response_mask,
                    token_turn=token_turn, turn_start=torch.tensor([[1, 0, 0], [1, 0, 0], [1, 0, 0]]).bool(),
                    row_episode=torch.tensor([0, 0, 1]), is_cot=torch.zeros(3, dtype=torch.bool),
                    continues_previous=torch.tensor([False, True, False]))


def test_assemble_by_hand():
    rows = _rows()
    values = torch.zeros(3, 3)
    values[0, 0], values[1, 0], values[2, 0] = 0.5, 0.25, 1.0  # V(H_t) at each turn start
    turn_mask = torch.tensor([[True, True], [True, False]])
    rewards = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    scored = ScoredPart(old_logprobs=torch.zeros(3, 3), ref_logprobs=torch.zeros(3, 3), values=values,
                        rewards=rewards, components={"turn_mask": turn_mask})
    episodes = [Episode(record=None, kind="dialogue"), Episode(record=None, kind="dialogue")]
    exp = assemble(rows=rows, episodes=episodes, scored=scored, ppo=PPOConfig(whiten_advantages=False),
                   final_weight=2.0)
    # G = suffix sums over turns: episode 0 -> [3, 2], episode 1 -> [3]; A = G - V.
    assert exp.returns.tolist() == [[3.0, 2.0], [3.0, 0.0]]
    assert exp.advantages.tolist() == [[2.5, 1.75], [2.0, 0.0]]
    assert exp.token_advantages.tolist() == [[2.5, 2.5, 0.0], [1.75, 1.75, 0.0], [2.0, 2.0, 2.0]]
    assert exp.token_returns.tolist() == [[3.0, 3.0, 0.0], [2.0, 2.0, 0.0], [3.0, 3.0, 3.0]]


def test_the_answer_turn_of_a_chain_of_thought_weighs_final_weight():
    rows = _rows()
    turn_mask = torch.tensor([[True, True], [True, False]])
    scored = ScoredPart(old_logprobs=torch.zeros(3, 3), ref_logprobs=torch.zeros(3, 3), values=torch.zeros(3, 3),
                        rewards=torch.tensor([[1.0, 2.0], [3.0, 0.0]]), components={"turn_mask": turn_mask})
    episodes = [Episode(record=None, kind="math", final_turn=1), Episode(record=None, kind="math", final_turn=0)]
    exp = assemble(rows=rows, episodes=episodes, scored=scored, ppo=PPOConfig(whiten_advantages=False),
                   final_weight=2.0)
    assert exp.returns.tolist() == [[5.0, 4.0], [6.0, 0.0]]  # lambda = 2 on each answer turn
