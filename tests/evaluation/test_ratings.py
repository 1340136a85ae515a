"""Rated-reply files (ratings format and Taskmaster-4, JSON Lines and Parquet) and the every-signal statistics:
hand-computed correlations, the partial correlation given length, and the context bootstrap."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cagsr.errors import DataError
from cagsr.evaluation.analysis.bootstrap import cluster_resamples
from cagsr.evaluation.analysis.correlation import (
    context_bootstrap,
    partial_spearman,
    pearson,
    signal_table,
    spearman,
)
from cagsr.evaluation.analysis.ratings import read_rated_replies


def rated(rid, turns, overall, model="m", **meta):
    roles = ["user", "agent"] * 4
    return {"id": rid, "turns": [{"role": roles[len(roles) - len(turns) + i], "text": t} for i, t in enumerate(turns)],
            "scores": {"overall": overall, "fluent": 1.0}, "meta": {"model": model, **meta}}


ROWS = [rated("a", ["hi", "hello", "how are you", "fine"], 3.0),
        rated("b", ["hi", "hello", "how are you", "fine", "and you", "good"], 2.5),  # same dialogue as a
        rated("c", ["yo", "hey", "what now", "lunch"], 1.0, model="Original Ground Truth"),
        rated("d", ["hey there", "hello", "nice day", "yes"], 4.0)]


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_ratings_rows_aspects_groups_and_dropped_systems(tmp_path):
    path = write(tmp_path / "r.jsonl", ROWS)
    replies, skipped, kind = read_rated_replies(path, "overall", drop_systems=["Original Ground Truth"])
    assert kind == "ratings" and skipped == 1
    assert [r.label for r in replies] == [3.0, 2.5, 4.0]
    assert replies[1].dialogue.turns[-1].text == "good" and replies[1].turn == 2
    # a's context is a prefix of b's: one dialogue, resampled together; d is a dialogue of its own.
    assert replies[0].group == replies[1].group != replies[2].group
    assert [r.label for r in read_rated_replies(path, "fluent")[0]] == [1.0] * 4
    with pytest.raises(DataError, match=r"r.jsonl:1: no score for aspect 'engaging' \(has: fluent, overall\)"):
        read_rated_replies(path, "engaging")


def test_context_id_is_the_group_when_the_file_has_one(tmp_path):
    rows = [rated(str(i), ["x", f"reply {i}"], float(i), context_id=i // 2) for i in range(4)]
    replies, _, _ = read_rated_replies(write(tmp_path / "c.jsonl", rows))
    assert [r.group for r in replies] == ["context:0", "context:0", "context:1", "context:1"]


def test_parquet_and_taskmaster_rows_read_like_json_lines(tmp_path, shared_data):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "r.parquet")
    from_parquet, _, _ = read_rated_replies(tmp_path / "r.parquet")
    from_jsonl, _, _ = read_rated_replies(write(tmp_path / "r.jsonl", ROWS))
    assert [(r.dialogue.turns, r.label, r.group) for r in from_parquet] == [
        (r.dialogue.turns, r.label, r.group) for r in from_jsonl]
    # Parquet cannot store an empty object (an API call without arguments): rows without one.
    taskmaster = [json.loads(line) for line in (shared_data / "taskmaster4_reward.jsonl").open()
                  if "{}" not in line][:40]
    pq.write_table(pa.Table.from_pylist(taskmaster), tmp_path / "t.parquet")
    write(tmp_path / "t.jsonl", taskmaster)
    a, skipped_a, kind = read_rated_replies(tmp_path / "t.parquet")
    b, skipped_b, _ = read_rated_replies(tmp_path / "t.jsonl")
    assert kind == "taskmaster" and skipped_a == skipped_b > 0
    assert [(r.dialogue.turns, r.label, r.group) for r in a] == [(r.dialogue.turns, r.label, r.group) for r in b]


def test_bad_rows_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="neither a rated reply"):
        read_rated_replies(write(tmp_path / "x.jsonl", [{"text": "hi"}]))
    bad = rated("z", ["hi", "hello"], "good")
    with pytest.raises(DataError, match=r"x.jsonl:1: score 'overall' must be a finite number"):
        read_rated_replies(write(tmp_path / "x.jsonl", [bad]))


def test_correlations_by_hand():
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0])
    # ranks equal the values; sum d^2 = 0 + 1 + 1 + 0 = 2 -> rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman(x, y) == pytest.approx(0.8)
    assert pearson(x, y) == pytest.approx(0.8)
    assert math.isnan(pearson(x, np.ones(4)))
    # z = x: nothing is left of x once z is held fixed.
    assert math.isnan(partial_spearman(x, y, x))
    z = np.array([1.0, 4.0, 2.0, 3.0])
    r_xy, r_xz, r_yz = 0.8, 0.4, 0.8  # by hand: sum d^2 = 6 (x, z) and 2 (y, z)
    assert spearman(x, z) == pytest.approx(r_xz) and spearman(y, z) == pytest.approx(r_yz)
    expected = (r_xy - r_xz * r_yz) / math.sqrt((1 - r_xz**2) * (1 - r_yz**2))
    assert partial_spearman(x, y, z) == pytest.approx(expected) == pytest.approx(0.48 / math.sqrt(0.84 * 0.36))


def test_context_bootstrap_draws_whole_contexts():
    groups = ["a", "a", "b", "c", "c", "c"]
    for index in cluster_resamples(groups, n_boot=50, seed=3):
        drawn = [groups[i] for i in index]
        for g in set(drawn):  # every context drawn brings all its replies, as many times as it was drawn
            assert drawn.count(g) % groups.count(g) == 0
    # One context: every resample is the whole set, so the interval collapses onto the estimate.
    x, y = np.array([1.0, 2.0, 3.0, 5.0]), np.array([2.0, 1.0, 4.0, 3.0])
    value, low, high = context_bootstrap(spearman, (x, y), ["one"] * 4, n_boot=20)
    assert value == pytest.approx(0.6) and low == pytest.approx(0.6) and high == pytest.approx(0.6)
    # A context of identical replies counts once: duplicating rows inside contexts leaves the spread alike,
    # while a row-level bootstrap of the duplicated data would narrow it.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=30), rng.normal(size=30)
    groups = list(range(30))
    _, low1, high1 = context_bootstrap(spearman, (x, y), groups, n_boot=400)
    _, low4, high4 = context_bootstrap(spearman, (np.repeat(x, 4), np.repeat(y, 4)), np.repeat(groups, 4),
                                       n_boot=400)
    assert abs((high4 - low4) - (high1 - low1)) < 0.1


def test_signal_table_continuous_and_binary():
    rng = np.random.default_rng(1)
    n = 80
    length = rng.integers(3, 40, n).astype(float)
    quality = length / 10 + rng.normal(0, 1, n)
    scores = [{"label": q, "group": i // 2, "length_tokens": ln, "sig": q + rng.normal(0, 0.5), "flat": 1.0}
              for i, (q, ln) in enumerate(zip(quality, length, strict=True))]
    table = {r["signal"]: r for r in signal_table(scores, ["sig", "length_tokens", "flat", "absent"], n_boot=200)}
    assert set(table) == {"sig", "length_tokens", "flat"} and table["sig"]["contexts"] == 40
    sig = table["sig"]
    assert sig["spearman_low"] < sig["spearman"] < sig["spearman_high"] and sig["spearman"] > 0.5
    assert 0 < sig["partial"] < sig["spearman"]  # part of its correlation was length's
    assert "partial" not in table["length_tokens"] and math.isnan(table["flat"]["spearman"])
    binary = [s | {"label": float(s["label"] > np.median(quality))} for s in scores]
    row = signal_table(binary, ["sig"], n_boot=100)[0]
    assert row["binary"] and row["auc"] > 0.7 and "spearman" not in row and "partial" in row
