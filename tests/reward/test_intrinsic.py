"""Intrinsic log-prob signals: hand-computed values, a slow reference loop, and per-turn means."""

from __future__ import annotations

import math

import torch

from cagsr.reward.intrinsic import INTRINSIC, intrinsic_components, token_signals


def test_self_certainty_of_a_uniform_distribution_is_zero_and_entropy_is_log_v():
    logits = torch.zeros(1, 2, 7)  # every token uniform over 7 ids
    out = token_signals(logits, torch.tensor([[3, 0]]))
    torch.testing.assert_close(out["self_certainty"], torch.zeros(1, 2), atol=1e-6, rtol=0)
    torch.testing.assert_close(out["predictive_entropy"], torch.full((1, 2), math.log(7)))
    torch.testing.assert_close(out["logprob"], torch.full((1, 2), -math.log(7)))


def test_a_peaked_distribution_is_certain():
    # Two ids, p = (e^20 / (e^20 + 1), 1 / (e^20 + 1)): by hand KL(U || p) = -log 2 - (log p1 + log p2) / 2.
    logits = torch.tensor([[[20.0, 0.0]]])
    out = token_signals(logits, torch.tensor([[0]]))
    log_p1, log_p2 = -math.log1p(math.exp(-20)), -20 - math.log1p(math.exp(-20))
    assert math.isclose(float(out["self_certainty"]), -math.log(2) - (log_p1 + log_p2) / 2, rel_tol=1e-6)
    assert float(out["self_certainty"]) > 9  # about 20 / 2 - log 2
    # Entropy by hand on a milder peak (at 20 nats p log p of the top id is below float32 resolution).
    mild = token_signals(torch.tensor([[[4.0, 0.0]]]), torch.tensor([[0]]))
    p2 = 1 / (math.exp(4) + 1)
    assert math.isclose(float(mild["predictive_entropy"]), -(1 - p2) * math.log(1 - p2) - p2 * math.log(p2),
                        rel_tol=1e-5)
    # A one-hot limit (-inf logits): entropy 0, no NaN; self-certainty is +inf there, as KL(U || p) is.
    hot = token_signals(torch.tensor([[[0.0, -math.inf, -math.inf]]]), torch.tensor([[0]]))
    assert float(hot["predictive_entropy"]) == 0.0 and float(hot["logprob"]) == 0.0


def test_matches_a_slow_reference_loop():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 11) * 3
    tokens = torch.randint(0, 11, (2, 3))
    out = token_signals(logits, tokens)
    for r in range(2):
        for s in range(3):
            p = torch.softmax(logits[r, s].double(), -1).tolist()
            kl = sum((1 / 11) * math.log((1 / 11) / q) for q in p)
            ent = -sum(q * math.log(q) for q in p)
            assert math.isclose(float(out["self_certainty"][r, s]), kl, rel_tol=1e-5, abs_tol=1e-6)
            assert math.isclose(float(out["predictive_entropy"][r, s]), ent, rel_tol=1e-5)
            assert math.isclose(float(out["logprob"][r, s]), math.log(p[tokens[r, s]]), rel_tol=1e-5)


def test_turn_means_skip_padding_and_other_turns():
    torch.manual_seed(1)
    logits = torch.randn(2, 4, 5)
    logits[1, 3] = math.nan  # a padded position may hold anything
    ids = torch.tensor([[1, 2, 3, 4], [0, 1, 2, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    turn = torch.tensor([[0, 0, 1, 1], [1, 1, 1, -1]])
    out = intrinsic_components(logits, ids, mask, turn, torch.tensor([0, 1]))
    per_token = token_signals(logits, ids)
    assert set(out) == set(INTRINSIC)
    for name in ("logprob", "predictive_entropy", "self_certainty"):
        values = per_token[name]
        expected = torch.tensor([[values[0, :2].mean(), values[0, 2:].mean()], [0.0, values[1, :3].mean()]])
        torch.testing.assert_close(out[name], expected)
    assert out["length_tokens"].tolist() == [[2.0, 2.0], [0.0, 3.0]]
