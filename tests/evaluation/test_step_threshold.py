"""The step-similarity measurement behind the 0.85 threshold, re-run on its hand-written paraphrases."""

from __future__ import annotations

import numpy as np

from cagsr.evaluation.metrics.scores import step_correctness
from cagsr.evaluation.metrics.step_threshold import PARAPHRASES, change_last_number, measure, table


def test_change_last_number():
    assert change_last_number("Natalia sold 48/2 = 24 clips.") == "Natalia sold 48/2 = 25 clips."
    assert change_last_number("She paid $1,200.") == "She paid 1201."
    assert change_last_number("No numbers.") is None


def test_paraphrases_match_and_other_problems_do_not(gsm8k, embedder):
    samples = measure(gsm8k[:12], embedder, seed=0)
    assert samples["paraphrase"].size == len(PARAPHRASES)
    assert np.mean(samples["paraphrase+num"] >= 0.85) >= 0.8
    assert np.mean(samples["other-problem"] >= 0.85) == 0.0
    assert np.mean(samples["same-solution+num"] >= 0.85) <= 0.1
    assert samples["wrong-number"].mean() > 0.9  # why the number check exists
    assert "paraphrase" in table(samples)
    by_index = {i: p for i, p in enumerate(gsm8k[:12])}
    for index, step, _ in PARAPHRASES:
        assert step in by_index[index].steps
    score = np.mean([step_correctness([t], by_index[i].steps, embedder) for i, _, t in PARAPHRASES])
    assert score >= 0.8
