"""Metrics on hand-made examples: BLEU, BERTScore, coherence, answers, steps, Spearman, latency."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cagsr.evaluation.analysis.validity import spearman_ci
from cagsr.evaluation.metrics.scores import (
    BertScorer,
    answer_correct,
    coherence,
    extract_final_answer,
    latency_summary,
    normalise_step,
    sentence_bleu,
    split_steps,
    step_correctness,
)


@pytest.fixture(scope="module")
def bert() -> BertScorer:
    return BertScorer()


def test_sentence_bleu_range_and_order():
    assert sentence_bleu("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)
    assert sentence_bleu("", "the cat") == 0.0
    partial = sentence_bleu("the cat sat on a rug", "the cat sat on the mat")
    unrelated = sentence_bleu("quantum flux capacitor", "the cat sat on the mat")
    assert 0.0 <= unrelated < partial < 1.0
    # Effective order: a two-word exact match still scores 1 with no 3- or 4-grams available.
    assert sentence_bleu("hello there", "hello there") == pytest.approx(1.0)


def test_bertscore_identical_vs_unrelated(bert):
    f1 = bert.f1(
        ["I would like to book a hotel room.", "I would like to book a hotel room.", "", "x"],
        ["I would like to book a hotel room.", "The weather in Denver is cold today.", "anything", "x"],
    )
    assert f1[0] == pytest.approx(1.0, abs=1e-3)
    assert f1[1] < 0.6
    assert f1[2] == 0.0
    assert bert.f1([], []) == []
    with pytest.raises(ValueError):
        bert.f1(["a"], [])


def test_coherence_is_mean_of_bleu_and_bertscore(bert):
    hyps = ["Your order ships on May 3.", "Bananas are yellow."]
    refs = ["Your order ships on May 3.", "Your order ships on May 3."]
    scores = coherence(hyps, refs, bert)
    assert scores[0] == pytest.approx(1.0, abs=1e-3)
    f1 = bert.f1(hyps, refs)[1]
    assert scores[1] == pytest.approx(0.5 * (sentence_bleu(hyps[1], refs[1]) + f1))
    assert 0.0 <= scores[1] < 0.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Natalia sold 48/2 = 24 clips.\n#### 72", "72"),
        ("So the total is 1,234.\nAnswer: $1,234.00", "1234"),
        ("answer: 12 apples and 3 pears", "12"),
        ("Answer: seven", "seven"),
        ("First 3 + 4 = 7, then 7 * 2 = 14.", "14"),
        ("He owes -5 dollars.", "-5"),
        ("no numbers here", None),
        ("#### 2.50", "2.5"),
    ],
)
def test_extract_final_answer(text, expected):
    assert extract_final_answer(text) == expected


def test_answer_correct():
    assert answer_correct("steps\nAnswer: 72.0", "72")
    assert answer_correct("#### 1,000", "1000")
    assert not answer_correct("#### 71", "72")
    assert not answer_correct("nothing", "72")


def test_split_steps_lines_sentences_and_answer():
    assert split_steps("A is 2.\n\nB is 3.\n#### 5") == ["A is 2.", "B is 3."]
    assert split_steps("A costs 2.5 dollars. B costs 3. Answer: 5.5") == [
        "A costs 2.5 dollars.",
        "B costs 3.",
    ]
    assert split_steps("So the total is 5. Answer: 5") == ["So the total is 5."]
    assert split_steps("Answer: 5") == []
    assert split_steps("") == []


def test_normalise_step():
    assert normalise_step("Weng earns 12/60 = $0.20 per minute.") == "weng earns 12 / 60 = 0.2 per minute"
    assert normalise_step("She made $1,200.00!") == normalise_step("she made 1200")
    assert normalise_step("10-8 = 2") == normalise_step("10 - 8 = 2")


def test_step_correctness_exact_and_semantic(embedder):
    reference = ["Natalia sold 48/2 = 24 clips in May.", "Natalia sold 48+24 = 72 clips altogether."]
    assert step_correctness([], reference) == 0.0
    exact = ["natalia sold 48/2 = 24 clips in may", "She likes clips."]
    assert step_correctness(exact, reference) == 0.5
    paraphrase = ["In May, Natalia sold 48/2 = 24 clips."]
    assert step_correctness(paraphrase, reference) == 0.0  # no embedder: exact only
    assert step_correctness(paraphrase, reference, embedder) == 1.0
    wrong = ["In May, Natalia sold 48/2 = 25 clips."]
    assert step_correctness(wrong, reference, embedder) == 0.0  # reads alike, wrong number
    assert step_correctness(wrong, reference, embedder, same_numbers=False) == 1.0
    assert step_correctness(["The weather is nice today."], reference, embedder) == 0.0


def test_embedder_unit_vectors_and_cache(embedder):
    vectors = embedder.encode(["hello there", "hello there", "a completely different sentence"])
    assert vectors.shape == (3, embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[1])
    assert embedder.encode([]).shape == (0, embedder.dim)
    assert "hello there" in embedder._cache


def test_spearman_ci_known_cases():
    x = np.arange(20.0)
    rho, low, high, n = spearman_ci(x, x**3)
    assert (rho, low, high, n) == (pytest.approx(1.0), pytest.approx(1.0), pytest.approx(1.0), 20)
    rho, low, high, n = spearman_ci(x, -x)
    assert rho == pytest.approx(-1.0) and high == pytest.approx(-1.0)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=60), rng.normal(size=60)
    b = a + rng.normal(size=60)
    rho, low, high, n = spearman_ci(a, b, n_boot=500)
    assert rho == pytest.approx(stats.spearmanr(a, b).statistic)
    assert low < rho < high and n == 60
    assert spearman_ci(a, b, n_boot=500, seed=3) == spearman_ci(a, b, n_boot=500, seed=3)


def test_spearman_ci_constant_missing_and_short():
    assert all(math.isnan(v) for v in spearman_ci([1, 1, 1, 1], [1, 2, 3, 4])[:3])
    rho, _, _, n = spearman_ci([1, 2, np.nan, 4, 5], [2, 4, 6, np.nan, 10])
    assert n == 3 and rho == pytest.approx(1.0)
    assert math.isnan(spearman_ci([1, 2], [2, 1])[0])
    with pytest.raises(ValueError):
        spearman_ci([1, 2, 3], [1, 2])


def test_latency_summary():
    out = latency_summary([1.0, 3.0], turns=[4, 4], tokens=[100, 300])
    assert out["ms_per_turn"] == pytest.approx(500.0)
    assert out["ms_per_token"] == pytest.approx(10.0)
    assert out["median_ms_per_turn"] == pytest.approx(500.0)
    assert out["calls"] == 2 and out["total_s"] == pytest.approx(4.0)
    empty = latency_summary([], [], [])
    assert empty["calls"] == 0 and math.isnan(empty["ms_per_turn"])
    with pytest.raises(ValueError):
        latency_summary([1.0], [1, 2], [3])
