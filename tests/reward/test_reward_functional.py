"""Tests of cagsr.reward.functional: hand-computed numbers, slow references, properties."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cagsr.reward.functional import (
    attention_entropy,
    block_pool,
    coverage,
    entropy_floor,
    floor_fraction,
    focus,
    history_repetition,
    single_turn_history_mask,
    turn_reward,
)

FAST = settings(max_examples=50, deadline=None)
LN2 = math.log(2.0)


def _close(actual: torch.Tensor, expected: list[float] | float) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype), atol=1e-6, rtol=0)


# ---------------------------------------------------------------- hand-computed examples


def _hand_abar() -> torch.Tensor:
    # One response of 2 tokens over a history of 3 tokens.
    return torch.tensor([[[0.5, 0.5, 0.0], [0.25, 0.25, 0.5]]])


def test_coverage_by_hand() -> None:
    salient = torch.tensor([[True, False, True]])
    # Row 0 puts 0.5 on salient tokens, row 1 puts 0.25 + 0.5 = 0.75: mean 0.625.
    _close(coverage(_hand_abar(), salient, torch.ones(1, 2)), [0.625])


def test_entropy_by_hand() -> None:
    # Row 0: ln 2. Row 1: -(2 * 0.25 ln 0.25 + 0.5 ln 0.5) = 1.5 ln 2.
    _close(attention_entropy(_hand_abar(), torch.ones(1, 3)), [[LN2, 1.5 * LN2]])
    _close(attention_entropy(_hand_abar(), torch.ones(1, 3)), [[0.69314718, 1.03972077]])


def test_focus_by_hand() -> None:
    entropy = attention_entropy(_hand_abar(), torch.ones(1, 3))
    tau = entropy_floor(torch.tensor([3]), tau0=0.5, kappa=0.1)  # 0.5 + 0.1 * 3 = 0.8
    _close(tau, [0.8])
    # max(0.6931, 0.8) = 0.8 and max(1.0397, 0.8) = 1.0397: F = -(0.8 + 1.0397) / 2.
    _close(focus(entropy, tau, torch.ones(1, 2)), [-0.91986039])
    _close(focus(entropy, float("-inf"), torch.ones(1, 2)), [-1.25 * LN2])


def test_floor_fraction_by_hand() -> None:
    entropy = attention_entropy(_hand_abar(), torch.ones(1, 3))  # [ln 2, 1.5 ln 2] = [0.693, 1.040]
    _close(floor_fraction(entropy, 0.8, torch.ones(1, 2)), [0.5])  # only 0.693 lies below 0.8
    _close(floor_fraction(entropy, 1.1, torch.ones(1, 2)), [1.0])
    _close(floor_fraction(entropy, float("-inf"), torch.ones(1, 2)), [0.0])
    _close(floor_fraction(entropy, 1.1, torch.tensor([[0.0, 1.0]])), [1.0])  # the masked token is not counted
    _close(floor_fraction(entropy, 1.1, torch.zeros(1, 2)), [0.0])


def test_repetition_by_hand() -> None:
    history = torch.tensor([[1, 2, 3, 4, 2, 3]])
    response = torch.tensor([[2, 3, 5, 2, 3]])
    # Bigrams of y: (2,3) (3,5) (5,2) (2,3); only the two (2,3) occur in H: 2 / 4.
    rep = history_repetition(response, torch.ones(1, 5), history, torch.ones(1, 6), n=2)
    _close(rep, [0.5])
    # Unigrams: 2, 3, 2, 3 occur, 5 does not: 4 / 5.
    _close(history_repetition(response, torch.ones(1, 5), history, torch.ones(1, 6), n=1), [0.8])


def test_repetition_padding_never_makes_ngrams() -> None:
    # The padded history holds (0, 0) and the padded response holds (0, 0) too.
    history = torch.tensor([[7, 8, 0, 0]])
    response = torch.tensor([[9, 0, 0]])
    rep = history_repetition(response, torch.tensor([[1, 0, 0]]), history, torch.tensor([[1, 1, 0, 0]]), 2)
    _close(rep, [0.0])  # a 1-token response has no bigram at all


def test_turn_reward_by_hand() -> None:
    _close(
        turn_reward(torch.tensor([0.5]), torch.tensor([-1.0]), torch.tensor([0.25]), 2.0, 0.5, 4.0), [-0.5]
    )


def test_block_pool_by_hand() -> None:
    abar = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [9.0, 9.0]]])
    blocks, block_mask = block_pool(abar, torch.tensor([[1, 1, 1, 0]]), block_tokens=2)
    # Tokens 0-1 form block 0, token 2 alone the partial block 1; the padded row is ignored.
    _close(blocks, [[[0.5, 0.5], [0.5, 0.5]]])
    assert block_mask.tolist() == [[True, True]]
    blocks, block_mask = block_pool(abar, torch.tensor([[1, 1, 1, 0]]), block_tokens=3)
    assert block_mask.tolist() == [[True, False]]
    _close(blocks[0, 0], [0.5, 0.5])


def test_block_pool_left_padding_counts_generated_tokens() -> None:
    abar = torch.tensor([[[7.0, 7.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]])
    blocks, block_mask = block_pool(abar, torch.tensor([[0, 1, 1, 1]]), block_tokens=2)
    _close(blocks, [[[0.5, 0.5], [1.0, 0.0]]])
    assert block_mask.tolist() == [[True, True]]


def test_single_turn_history_mask() -> None:
    token_turn = torch.tensor([[-1, 0, 0, -1, 1, 1, -1, 2, 2], [0, 0, 1, 1, -1, -1, -1, -1, -1]])
    mask = single_turn_history_mask(token_turn, torch.tensor([2, 1]))
    assert mask.tolist() == [
        [False, False, False, False, False, False, False, True, True],
        [False, False, True, True, False, False, False, False, False],
    ]
    assert single_turn_history_mask(token_turn, 0)[0].tolist()[:3] == [False, True, True]


def test_entropy_floor_inputs() -> None:
    _close(entropy_floor(2, 0.1, 0.05), 0.2)
    assert torch.isneginf(entropy_floor(torch.arange(4), float("-inf"), 0.3)).all()
    assert torch.isneginf(entropy_floor(torch.tensor([float("inf")]), float("-inf"), 0.0)).all()


# ---------------------------------------------------------------- degenerate attention


def test_one_token_history() -> None:
    abar = torch.ones(2, 3, 1)
    mask = torch.ones(2, 3)
    _close(attention_entropy(abar, torch.ones(2, 1)), [[0.0] * 3] * 2)
    _close(coverage(abar, torch.tensor([[True], [False]]), mask), [1.0, 0.0])


def test_all_mass_on_one_token_and_no_salient_token() -> None:
    abar = torch.zeros(1, 2, 4)
    abar[0, :, 2] = 1.0
    _close(attention_entropy(abar, torch.ones(1, 4)), [[0.0, 0.0]])
    _close(coverage(abar, torch.zeros(1, 4, dtype=torch.bool), torch.ones(1, 2)), [0.0])


def test_fully_masked_rows_give_zero_not_nan() -> None:
    abar = torch.full((2, 3, 4), float("nan"))
    no_history = torch.zeros(2, 4)
    no_response = torch.zeros(2, 3)
    entropy = attention_entropy(abar, no_history)
    _close(entropy, [[0.0] * 3] * 2)
    _close(coverage(abar, torch.zeros(2, 4), no_response), [0.0, 0.0])
    _close(focus(entropy, 0.5, no_response), [0.0, 0.0])
    blocks, block_mask = block_pool(abar, no_response, 2)
    assert not block_mask.any() and torch.equal(blocks, torch.zeros_like(blocks))
    ids = torch.zeros(2, 3, dtype=torch.long)
    _close(history_repetition(ids, no_response, torch.zeros(2, 4, dtype=torch.long), no_history, 2), [0, 0])


def test_entropy_gradient_is_finite_with_zeros() -> None:
    abar = torch.tensor([[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]]], requires_grad=True)
    attention_entropy(abar, torch.ones(1, 3)).sum().backward()
    assert torch.isfinite(abar.grad).all()


# ---------------------------------------------------------------- random cases


def _case(seed: int, b: int, s: int, n: int) -> dict[str, torch.Tensor]:
    """Random abar whose valid rows are distributions over the valid history columns."""
    g = torch.Generator().manual_seed(seed)
    history_mask = torch.rand(b, n, generator=g) < 0.8
    response_mask = torch.rand(b, s, generator=g) < 0.8
    # Peaky logits so some rows are nearly one-hot and some nearly uniform.
    logits = torch.randn(b, s, n, generator=g) * torch.rand(b, s, 1, generator=g) * 8
    logits = logits.masked_fill(~history_mask[:, None, :], float("-inf"))
    abar = torch.nan_to_num(logits.softmax(-1), nan=0.0)  # rows without history -> 0
    salient = (torch.rand(b, n, generator=g) < 0.4) & history_mask
    return {
        "abar": abar,
        "history_mask": history_mask,
        "response_mask": response_mask,
        "salient_mask": salient,
        "turn": torch.randint(1, 6, (b,), generator=g),
        "response_ids": torch.randint(0, 4, (b, s), generator=g),
        "history_ids": torch.randint(0, 4, (b, n), generator=g),
    }


def _pad(case: dict[str, torch.Tensor], extra_s: int, extra_n: int, seed: int) -> dict[str, torch.Tensor]:
    """Append masked response rows and history columns filled with garbage."""
    g = torch.Generator().manual_seed(seed)
    b, s, n = case["abar"].shape
    garbage = torch.randn(b, s + extra_s, n + extra_n, generator=g) * 1e3
    garbage[..., ::3, ::2] = float("nan")
    garbage[: b - 1 if b > 1 else b, ::2, 1::3] = float("inf")
    garbage[:, :s, :n] = case["abar"]
    falses = torch.zeros
    return {
        "abar": garbage,
        "history_mask": torch.cat([case["history_mask"], falses(b, extra_n, dtype=torch.bool)], 1),
        "response_mask": torch.cat([case["response_mask"], falses(b, extra_s, dtype=torch.bool)], 1),
        "salient_mask": torch.cat([case["salient_mask"], falses(b, extra_n, dtype=torch.bool)], 1),
        "turn": case["turn"],
        "response_ids": torch.cat([case["response_ids"], torch.randint(0, 4, (b, extra_s), generator=g)], 1),
        "history_ids": torch.cat([case["history_ids"], torch.randint(0, 4, (b, extra_n), generator=g)], 1),
    }


def _reward_terms(case: dict[str, torch.Tensor], tau0: float = 0.2, kappa: float = 0.1, n: int = 2):
    entropy = attention_entropy(case["abar"], case["history_mask"])
    tau = entropy_floor(case["turn"], tau0, kappa)
    blocks, block_mask = block_pool(case["abar"], case["response_mask"], 3)
    block_entropy = attention_entropy(blocks, case["history_mask"])
    return {
        "coverage": coverage(case["abar"], case["salient_mask"], case["response_mask"]),
        "focus": focus(entropy, tau, case["response_mask"]),
        "repetition": history_repetition(
            case["response_ids"], case["response_mask"], case["history_ids"], case["history_mask"], n
        ),
        "cot_coverage": coverage(blocks, case["salient_mask"], block_mask),
        "cot_focus": focus(block_entropy, tau, block_mask),
    }


shapes = {
    "seed": st.integers(0, 2**31 - 1),
    "b": st.integers(1, 4),
    "s": st.integers(1, 9),
    "n": st.integers(1, 9),
}


@FAST
@given(**shapes)
def test_properties_of_the_terms(seed: int, b: int, s: int, n: int) -> None:
    case = _case(seed, b, s, n)
    terms = _reward_terms(case)
    assert ((terms["coverage"] >= -1e-6) & (terms["coverage"] <= 1 + 1e-6)).all()
    assert ((terms["repetition"] >= 0) & (terms["repetition"] <= 1)).all()
    entropy = attention_entropy(case["abar"], case["history_mask"])
    n_valid = case["history_mask"].sum(-1, keepdim=True).clamp_min(1).float()
    assert (entropy >= -1e-6).all() and (entropy <= n_valid.log() + 1e-5).all()
    tau = entropy_floor(case["turn"], 0.2, 0.1)
    nonempty = case["response_mask"].any(-1)
    assert (terms["focus"][nonempty] <= -tau[nonempty] + 1e-6).all()
    assert (terms["focus"][~nonempty] == 0).all()
    for value in terms.values():
        assert torch.isfinite(value).all()


@FAST
@given(**shapes, extra_s=st.integers(0, 4), extra_n=st.integers(0, 4))
def test_padding_never_changes_a_result(
    seed: int, b: int, s: int, n: int, extra_s: int, extra_n: int
) -> None:
    case = _case(seed, b, s, n)
    padded = _pad(case, extra_s, extra_n, seed + 1)
    plain, with_pad = _reward_terms(case), _reward_terms(padded)
    for name, value in plain.items():
        torch.testing.assert_close(with_pad[name], value, atol=1e-6, rtol=0, msg=name)
    entropy = attention_entropy(padded["abar"], padded["history_mask"])[:, :s]
    torch.testing.assert_close(entropy, attention_entropy(case["abar"], case["history_mask"]))


@FAST
@given(**shapes)
def test_no_clamping_gives_minus_mean_entropy(seed: int, b: int, s: int, n: int) -> None:
    case = _case(seed, b, s, n)
    terms = _reward_terms(case, tau0=float("-inf"), kappa=0.3)
    entropy = attention_entropy(case["abar"], case["history_mask"])
    mask = case["response_mask"].float()
    expected = -(entropy * mask).sum(-1) / mask.sum(-1).clamp_min(1)
    assert not torch.isnan(terms["focus"]).any()
    torch.testing.assert_close(terms["focus"], expected)


@FAST
@given(**shapes)
def test_floor_fraction_says_whether_the_clamp_changed_focus(seed: int, b: int, s: int, n: int) -> None:
    case = _case(seed, b, s, n)
    entropy = attention_entropy(case["abar"], case["history_mask"])
    tau = entropy_floor(case["turn"], 0.8, 0.1)
    share = floor_fraction(entropy, tau, case["response_mask"])
    clamped, unclamped = focus(entropy, tau, case["response_mask"]), focus(entropy, float("-inf"), case["response_mask"])
    assert ((share >= 0) & (share <= 1)).all()
    torch.testing.assert_close(clamped[share == 0], unclamped[share == 0])
    assert (clamped[share > 0] < unclamped[share > 0]).all()


@FAST
@given(**shapes)
def test_block_pool_rows_stay_distributions(seed: int, b: int, s: int, n: int) -> None:
    case = _case(seed, b, s, n)
    blocks, block_mask = block_pool(case["abar"], case["response_mask"], 2)
    assert block_mask.sum(-1).tolist() == [math.ceil(k / 2) for k in case["response_mask"].sum(-1).tolist()]
    # Each valid block row sums like the rows it pools (1, or 0 when the history is empty).
    has_history = case["history_mask"].any(-1, keepdim=True).float().expand_as(block_mask)
    torch.testing.assert_close(blocks.sum(-1)[block_mask], has_history[block_mask])
    # With one token per block the pooled rows are the original rows.
    ones, ones_mask = block_pool(case["abar"], case["response_mask"], 1)
    for i in range(b):
        torch.testing.assert_close(ones[i][ones_mask[i]], case["abar"][i][case["response_mask"][i]])


def _slow_repetition(
    resp: list[int], resp_mask: list[bool], hist: list[int], hist_mask: list[bool], n: int
) -> float:
    def grams(ids: list[int], mask: list[bool]) -> list[tuple[int, ...]]:
        return [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1) if all(mask[i : i + n])]

    ys, hs = grams(resp, resp_mask), set(grams(hist, hist_mask))
    return sum(g in hs for g in ys) / max(1, len(ys))


@FAST
@given(**shapes, n_gram=st.integers(1, 4), vocab=st.integers(1, 5))
def test_repetition_matches_slow_loop(seed: int, b: int, s: int, n: int, n_gram: int, vocab: int) -> None:
    g = torch.Generator().manual_seed(seed)
    resp, hist = torch.randint(0, vocab, (b, s), generator=g), torch.randint(0, vocab, (b, n), generator=g)
    resp_mask, hist_mask = torch.rand(b, s, generator=g) < 0.8, torch.rand(b, n, generator=g) < 0.8
    fast = history_repetition(resp, resp_mask, hist, hist_mask, n_gram)
    slow = [
        _slow_repetition(
            resp[i].tolist(), resp_mask[i].tolist(), hist[i].tolist(), hist_mask[i].tolist(), n_gram
        )
        for i in range(b)
    ]
    _close(fast, slow)


def test_repetition_is_exact_for_huge_token_ids() -> None:
    # Ids far beyond any vocabulary: a hash would risk collisions, the exact path cannot.
    big = 2**62
    history = torch.tensor([[big, big - 1, 5]])
    response = torch.tensor([[big, big - 1, big - 2]])
    _close(history_repetition(response, torch.ones(1, 3), history, torch.ones(1, 3), 2), [0.5])


def test_repetition_rejects_bad_n() -> None:
    with pytest.raises(ValueError):
        history_repetition(torch.zeros(1, 2), torch.ones(1, 2), torch.zeros(1, 2), torch.ones(1, 2), 0)
