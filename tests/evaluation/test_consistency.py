"""The on-topic classifier on a slice of STAR: held-out accuracy, save/load, train-once reuse."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cagsr.data.generate import generate_dialogues
from cagsr.errors import DataError
from cagsr.evaluation.config import ConsistencyConfig
from cagsr.evaluation.metrics.consistency import (
    ConsistencyClassifier,
    build_pairs,
    ensure_consistency_classifier,
    train_consistency,
)

CONFIG = ConsistencyConfig(max_dialogues=160)


def test_build_pairs_negatives_come_from_other_dialogues():
    dialogues = generate_dialogues(12, seed=0)
    pairs = build_pairs(dialogues, ConsistencyConfig(turns_per_dialogue=1), seed=0)
    assert pairs.labels.count(1) == 12
    assert set(pairs.kinds) == {"recorded", "same-domain", "other-domain"}
    own = {u.text for d in dialogues for u in d.turns}
    for context, response, label in zip(pairs.contexts, pairs.responses, pairs.labels, strict=True):
        assert response in own
        if label == 0:  # a borrowed response is not the one recorded after this context
            source = next(d for d in dialogues if any(u.text == response for u in d.turns))
            assert not context.endswith(next(u.text for u in source.turns)) or len(source.turns) > 1
    assert build_pairs(dialogues, ConsistencyConfig(turns_per_dialogue=1), seed=0) == pairs


@pytest.fixture(scope="module")
def trained(star, embedder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("classifiers") / "star"
    clf = ensure_consistency_classifier(star, name="star", config=CONFIG, folder=folder, embedder=embedder)
    return clf, folder


def test_star_held_out_accuracy(trained):
    clf, _ = trained
    report = clf.report
    print("consistency classifier on STAR slice:", json.dumps(report))
    assert report["dialogues_val"] == 32 and report["pairs_val"] > 150
    assert report["val_accuracy"] > 0.7
    assert report["val_accuracy_other-domain"] > report["val_accuracy_same-domain"] - 0.05


def test_recorded_responses_score_above_borrowed_ones(trained, star):
    clf, _ = trained
    dialogues = star[-40:]
    turns = [d.agent_turn_indices()[-1] for d in dialogues]
    contexts = [d.turns[:i] for d, i in zip(dialogues, turns, strict=True)]
    recorded = [d.turns[i].text for d, i in zip(dialogues, turns, strict=True)]
    borrowed = recorded[20:] + recorded[:20]  # each context paired with another dialogue's response
    assert clf.probabilities(contexts, recorded).mean() > clf.probabilities(contexts, borrowed).mean() + 0.1
    assert clf.accepts([], []) == [] and np.isnan(clf.acceptance_rate([], []))
    assert 0.0 <= clf.acceptance_rate(contexts, recorded) <= 1.0
    assert clf.accepts(["user: hi"], ["Hello"]) in ([True], [False])


def test_saved_classifier_is_reused_and_round_trips(trained, star, embedder, monkeypatch):
    clf, folder = trained
    import cagsr.evaluation.metrics.consistency as module

    def no_training(*args, **kwargs):
        raise AssertionError("retrained although a matching classifier was saved")

    monkeypatch.setattr(module, "train_consistency", no_training)
    again = ensure_consistency_classifier(star, name="star", config=CONFIG, folder=folder, embedder=embedder)
    contexts, responses = ["user: I want to book a room"], ["Which city are you travelling to?"]
    np.testing.assert_allclose(
        again.probabilities(contexts, responses), clf.probabilities(contexts, responses), rtol=1e-6
    )
    assert again.report == clf.report
    loaded = ConsistencyClassifier.load(folder, embedder)
    assert loaded.config == CONFIG
    with pytest.raises(AssertionError, match="retrained"):  # another corpus means training again
        ensure_consistency_classifier(star[:-1], name="star", config=CONFIG, folder=folder, embedder=embedder)


def test_load_errors(tmp_path, embedder):
    with pytest.raises(DataError, match="not a saved consistency classifier"):
        ConsistencyClassifier.load(tmp_path, embedder)
    with pytest.raises(DataError, match="at least 8 dialogues"):
        train_consistency(generate_dialogues(3, seed=0), config=ConsistencyConfig(), embedder=embedder)
