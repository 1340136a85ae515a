"""Paired statistics on hand-made examples with hand-computed values, and against an exact reference."""

import itertools
import math

import numpy as np
import pytest

from cagsr.evaluation.analysis.paired import (
    HOLDS,
    NOT_SHOWN,
    REVERSED,
    Interval,
    align,
    compare,
    item_means,
    paired_bootstrap,
    seed_average,
    seed_spread,
    verdict,
)


def exact_bootstrap_quantiles(diffs, level=0.95):
    """Slow reference: every one of the n**n equally likely resamples, the quantiles of their means."""
    means = sorted(sum(c) / len(c) for c in itertools.product(diffs, repeat=len(diffs)))
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def test_two_items_hand_computed():
    # diffs 0 and 2: resampled means are 0 (1/4), 1 (1/2), 2 (1/4), so the 95% interval is [0, 2]
    interval = paired_bootstrap([0.0, 2.0], n_boot=4000)
    assert interval.mean == 1.0 and interval.n == 2
    assert (interval.low, interval.high) == (0.0, 2.0)


def test_constant_differences_give_a_point_interval():
    assert paired_bootstrap([0.25] * 5) == Interval(0.25, 0.25, 0.25, 5)


def test_matches_the_exact_bootstrap_distribution():
    diffs = [0.0, 1.0, 1.0, 3.0, -1.0]
    low, high = exact_bootstrap_quantiles(diffs)
    interval = paired_bootstrap(diffs, n_boot=40_000, seed=3)
    assert interval.mean == pytest.approx(0.8)
    assert interval.low == pytest.approx(low, abs=0.21) and interval.high == pytest.approx(high, abs=0.21)
    assert low < 0.8 < high


def test_empty_and_seeded():
    assert paired_bootstrap([]).n == 0 and math.isnan(paired_bootstrap([]).mean)
    assert paired_bootstrap([0.1, 0.5, 0.2], seed=7) == paired_bootstrap([0.1, 0.5, 0.2], seed=7)


def test_item_means_average_turns_and_skip_nan():
    rows = [{"episode": "d1", "coherence": 0.2}, {"episode": "d1", "coherence": 0.6},
            {"episode": "d2", "coherence": math.nan}, {"episode": "d2", "coherence": 1.0}, {"episode": "d3"}]
    assert item_means(rows, "coherence") == pytest.approx({"d1": 0.4, "d2": 1.0})


def test_align_pairs_by_id_and_rejects_different_items():
    ids, diffs = align({"b": 2.0, "a": 1.0}, {"a": 0.5, "b": 3.0})
    assert ids == ["a", "b"] and diffs.tolist() == [0.5, -1.0]
    with pytest.raises(ValueError, match="different items"):
        align({"a": 1.0}, {"a": 1.0, "b": 0.0})


def test_verdicts_both_directions():
    above, across, below = Interval(0.02, 0.01, 0.03, 9), Interval(0.0, -0.01, 0.01, 9), Interval(-0.02, -0.03, -0.01, 9)
    assert [verdict(i) for i in (above, across, below)] == [HOLDS, NOT_SHOWN, REVERSED]
    # an ablation is expected to cost: a below b holds
    assert [verdict(i, -1) for i in (above, across, below)] == [REVERSED, NOT_SHOWN, HOLDS]
    assert verdict(Interval(math.nan, math.nan, math.nan, 0)) == NOT_SHOWN
    assert verdict(Interval(0.0, 0.0, 0.0, 3)) == NOT_SHOWN  # touching 0 is not shown


def test_seed_average_and_spread():
    assert seed_average([{"a": 0.0, "b": 1.0}, {"a": 1.0, "b": 1.0}]) == {"a": 0.5, "b": 1.0}
    assert seed_spread([1.0, 3.0]) == pytest.approx(math.sqrt(2))
    assert seed_spread([5.0]) == 0.0 and math.isnan(seed_spread([]))


def test_compare_pairs_seeds_and_averages_items():
    a = [{"x": 1.0, "y": 0.0}, {"x": 1.0, "y": 2.0}]  # seed means 0.5, 1.5
    b = [{"x": 0.0, "y": 0.0}, {"x": 1.0, "y": 1.0}]  # seed means 0.0, 1.0
    result = compare(a, b, n_boot=1000)
    assert result.seed_diffs == (0.5, 0.5) and result.spread == 0.0
    # seed-averaged items: x 1.0 - 0.5 = 0.5, y 1.0 - 0.5 = 0.5
    assert result.interval == Interval(0.5, 0.5, 0.5, 2)
    single = compare(a, [{"x": 0.0, "y": 1.0}], n_boot=1000)  # one seed of b: every a seed against it
    assert single.seed_diffs == (0.0, 1.0) and single.spread == pytest.approx(math.sqrt(0.5))


def test_a_row_with_fewer_seeds_is_held_against_its_own_starting_models():
    # three supervised models; RL seed s started from model s; the ablation ran seed 0 only
    no_rl = [{"x": 0.0, "y": 0.0}, {"x": 1.0, "y": 1.0}, {"x": 2.0, "y": 2.0}]
    ablation = [{"x": 0.5, "y": 0.25}]
    result = compare(ablation, no_rl, n_boot=1000, starts=3)
    assert result.seed_diffs == (0.375,)
    assert result.interval.n == 2 and result.interval.mean == pytest.approx(0.375)
    assert compare(ablation, no_rl, n_boot=1000).seed_diffs == (-0.625,)  # one shared start: b's mean
    core = [{"x": 1.0, "y": 1.0}, {"x": 3.0, "y": 1.0}, {"x": 2.0, "y": 3.0}]
    full = compare(core, no_rl, n_boot=1000, starts=3)
    assert full.seed_diffs == (1.0, 1.0, 0.5)
    assert full.interval.mean == pytest.approx((1.0 + 1.0 + 0.5) / 3)  # seed pairs, as with one start
    one_start = compare(core, no_rl, n_boot=1000).interval
    assert (one_start.mean, one_start.low, one_start.high) == pytest.approx((full.interval.mean, full.interval.low,
                                                                           full.interval.high))


def test_float_noise_is_not_a_difference():
    noise = Interval(2e-7, 1e-7, 3e-7, 5)
    assert verdict(noise) == NOT_SHOWN and verdict(noise, atol=0.0) == HOLDS
