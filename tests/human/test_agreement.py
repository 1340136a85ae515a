"""Krippendorff's alpha against published worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cagsr.human.agreement import coincidence_matrix, krippendorff_alpha

nan = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers, 12 units,
# values 1..5 with missing data. Published: nominal 0.743, ordinal 0.815, interval 0.849, ratio 0.797.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
    [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
]
# Wikipedia's "A computational example" (3 coders, 15 units): nominal 0.691, interval 0.811.
WIKIPEDIA = [
    [nan, nan, nan, nan, nan, 3, 4, 1, 2, 1, 1, 3, 3, nan, 3],
    [1, nan, 2, 1, 3, 3, 4, 3, nan, nan, nan, nan, nan, nan, nan],
    [nan, nan, 2, 1, 3, 4, 4, nan, 2, 1, 1, 3, 3, nan, 4],
]


@pytest.mark.parametrize(
    ("level", "expected"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)]
)
def test_krippendorff_2011_example(level, expected):
    assert krippendorff_alpha(KRIPPENDORFF_2011, level) == pytest.approx(expected, abs=5e-4)


def test_wikipedia_example():
    assert krippendorff_alpha(WIKIPEDIA, "nominal") == pytest.approx(0.691, abs=5e-4)
    assert krippendorff_alpha(WIKIPEDIA, "interval") == pytest.approx(0.811, abs=5e-4)


def test_coincidence_matrix_of_the_2011_example():
    values, o = coincidence_matrix(np.array(KRIPPENDORFF_2011, dtype=float))
    assert values.tolist() == [1, 2, 3, 4, 5]
    # Published marginals n_c = 9, 13, 10, 5, 3 (n = 40); the matrix is symmetric.
    np.testing.assert_allclose(o.sum(axis=1), [9, 13, 10, 5, 3])
    np.testing.assert_allclose(o, o.T)
    assert o[0, 0] == pytest.approx(7.0) and o[0, 1] == pytest.approx(4 / 3)


def test_perfect_agreement_no_variation_and_bad_input():
    assert krippendorff_alpha([[1, 2, 3, 4], [1, 2, 3, 4]], "ordinal") == pytest.approx(1.0)
    assert math.isnan(krippendorff_alpha([[3, 3, 3], [3, 3, 3]]))  # one value only: nothing to compare
    assert math.isnan(krippendorff_alpha([[1, nan], [nan, 2]]))  # no unit rated twice
    # Systematic disagreement is worse than chance.
    assert krippendorff_alpha([[1, 5, 1, 5], [5, 1, 5, 1]], "interval") < 0
    with pytest.raises(ValueError):
        krippendorff_alpha([1, 2, 3])
    with pytest.raises(ValueError):
        krippendorff_alpha([[1, 2], [2, 1]], "cardinal")
