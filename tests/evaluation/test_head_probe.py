"""Ridge head probe: partial Spearman by hand, splits that keep contexts whole, a planted signal recovered."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from cagsr.evaluation.analysis.head_probe import (
    correlation,
    fit_probe,
    group_folds,
    learning_curve,
    paired_difference,
    partial_spearman,
    spearman,
    split_by_context,
    transfer,
)


def test_partial_spearman_matches_the_textbook_formula():
    rng = np.random.default_rng(0)
    z = rng.normal(size=60)
    x, y = z + rng.normal(size=60), z + rng.normal(size=60)
    rx, ry, rz = (stats.rankdata(v) for v in (x, y, z))
    r = lambda a, b: np.corrcoef(a, b)[0, 1]  # noqa: E731
    want = (r(rx, ry) - r(rx, rz) * r(ry, rz)) / math.sqrt((1 - r(rx, rz) ** 2) * (1 - r(ry, rz) ** 2))
    assert abs(partial_spearman(x, y, z) - want) < 1e-12
    assert spearman(x, y) > 0.3 and abs(partial_spearman(x, y, z)) < spearman(x, y)


def test_partial_spearman_by_hand():
    # z explains nothing of the ranks of x and y (orthogonal after centring): the partial is the plain rho.
    x, y, z = np.array([1.0, 2, 3, 4]), np.array([1.0, 3, 2, 4]), np.array([1.0, 2, 2, 1])
    assert abs(partial_spearman(x, y, z) - 0.8) < 1e-12


def test_splits_and_folds_keep_contexts_whole():
    groups = [f"c{i // 3}" for i in range(30)]  # 10 contexts of 3 replies
    fit, test = split_by_context(groups, 7, np.random.default_rng(1))
    assert len(fit) == 7 and len(test) == 21  # 2 whole contexts + 1 reply of a third (its other 2 unused)
    assert not {groups[i] for i in fit} & {groups[i] for i in test}
    fold = group_folds(groups, 5, 0)
    for g in set(groups):
        assert len({fold[i] for i, h in enumerate(groups) if h == g}) == 1


def test_probe_recovers_a_planted_head_and_transfers():
    rng = np.random.default_rng(0)
    n, d = 200, 40
    x = rng.normal(size=(n, d))
    y = 2 * x[:, 3] - x[:, 7] + 0.5 * rng.normal(size=n)
    groups = [f"c{i // 4}" for i in range(n)]
    length = rng.normal(size=n)
    probe = fit_probe(x, y, groups)
    assert probe.cv_rho > 0.8 and set(np.argsort(-np.abs(probe.weights))[:2]) == {3, 7}
    curve = learning_curve(x, y, groups, length, sizes=(20, 100), repeats=3)
    assert [c["labels"] for c in curve] == [20, 100] and curve[1]["rho"] > 0.85 and curve[1]["rho"] >= curve[0]["rho"]
    x_b = rng.normal(size=(80, d))
    y_b = 2 * x_b[:, 3] - x_b[:, 7]
    moved = transfer(x, y, groups, x_b, y_b, [f"b{i // 2}" for i in range(80)], rng.normal(size=80), n_boot=50)
    assert moved["rho"] > 0.9 and moved["low"] <= moved["rho"] <= moved["high"]


def test_correlation_interval_resamples_contexts():
    rng = np.random.default_rng(2)
    y = rng.normal(size=40)
    row = correlation(y + rng.normal(size=40), y, rng.normal(size=40), [i // 4 for i in range(40)], n_boot=200)
    assert row["low"] < row["rho"] < row["high"] and row["n"] == 40
    assert row["partial_low"] < row["partial"] < row["partial_high"]


def test_paired_difference_uses_the_same_resamples():
    rng = np.random.default_rng(3)
    y = rng.normal(size=60)
    a, b = y + 0.3 * rng.normal(size=60), y + 3 * rng.normal(size=60)
    d = paired_difference(a, b, y, [i // 3 for i in range(60)], n_boot=200)
    assert abs(d["diff"] - (spearman(a, y) - spearman(b, y))) < 1e-12 and 0 < d["low"] < d["diff"] < d["high"]
    assert paired_difference(a, a, y, [i // 3 for i in range(60)], n_boot=20) == {"diff": 0.0, "low": 0.0, "high": 0.0}


def test_conversation_groups_join_shared_contexts_and_continued_dialogues():
    from cagsr.data.schema import Utterance as U
    from cagsr.evaluation.analysis.head_features import conversation_groups

    hi, a1, u2 = U("user", "hi"), U("agent", "hello"), U("user", "how are you")
    other = U("user", "hey there")
    dialogues = [[hi, a1],                               # turn 1 of conversation A
                 [hi, U("agent", "yo")],                 # another reply to the same context: A
                 [hi, a1, u2, U("agent", "fine")],       # a later turn of A (its context opens with dialogue 0)
                 [hi, U("agent", "howdy"), u2, U("agent", "ok")],  # opens with "hi" but not with a rated dialogue: B
                 [other, U("agent", "hi")]]              # C
    groups = conversation_groups(dialogues)
    assert groups[0] == groups[1] == groups[2] and len({groups[0], groups[3], groups[4]}) == 3
