"""Next-token choice: the same kept set and probabilities as transformers' logits warpers.

.venv/bin/python -m pytest tests/rollout/test_engines_sampling.py
"""

from __future__ import annotations

import pytest
import torch
from scipy.stats import chisquare
from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from cagsr.rollout.engines.base import SamplingConfig
from cagsr.rollout.engines.sampling import choose, make_generator, token_logprobs, warped

CONFIGS = [(0.8, 50, 0.95), (1.0, 0, 0.9), (0.7, 10, 1.0), (1.0, 0, 1.0), (1.3, 400, 0.5), (0.5, 1, 0.3)]


pytestmark = pytest.mark.usefixtures("one_thread")


def hf_probs(logits: torch.Tensor, t: float, k: int, p: float) -> torch.Tensor:
    """[R, V] probabilities after transformers' warpers, in generate's order (temperature, top-k, top-p)."""
    procs = LogitsProcessorList()
    if t != 1.0:
        procs.append(TemperatureLogitsWarper(t))
    if k:
        procs.append(TopKLogitsWarper(k))
    if p < 1.0:
        procs.append(TopPLogitsWarper(p))
    return procs(None, logits.clone()).softmax(-1)


def our_probs(logits: torch.Tensor, sampling: SamplingConfig) -> torch.Tensor:
    values, ids = warped(logits, sampling)
    probs = values.softmax(-1)
    return probs if ids is None else torch.zeros_like(logits).scatter(-1, ids, probs)


def random_logits(rows: int = 6, vocab: int = 300, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, vocab, generator=g) * 3


@pytest.mark.parametrize(("t", "k", "p"), CONFIGS)
def test_warped_matches_transformers(t, k, p):
    logits = random_logits()
    expected = hf_probs(logits, t, k, p)
    got = our_probs(logits, SamplingConfig(temperature=t, top_k=k, top_p=p))
    assert torch.equal(expected > 0, got > 0), "kept token sets differ"
    assert torch.allclose(got, expected, atol=1e-6)


def test_greedy_is_argmax():
    logits = random_logits()
    assert torch.equal(choose(logits, SamplingConfig(do_sample=False)), logits.argmax(-1))


@pytest.mark.parametrize(("t", "k", "p"), CONFIGS[:3])
def test_sample_frequencies_match_distribution(t, k, p):
    """Chi-square of 40,000 draws against transformers' probabilities (bins with expected count >= 5)."""
    n = 40_000
    logits = random_logits(1, 300, seed=1).expand(n, -1)
    sampling = SamplingConfig(temperature=t, top_k=k, top_p=p)
    draws = choose(logits, sampling, make_generator(0, logits.device))
    observed = torch.bincount(draws, minlength=300).double()
    expected = hf_probs(logits[:1], t, k, p)[0].double() * n
    big = expected >= 5
    obs = torch.cat([observed[big], observed[~big].sum()[None]])
    exp = torch.cat([expected[big], expected[~big].sum()[None]])
    keep = exp > 0
    exp = exp * obs[keep].sum() / exp[keep].sum()  # float32 probabilities sum to 1 only within ~1e-7
    assert observed[hf_probs(logits[:1], t, k, p)[0] == 0].sum() == 0, "sampled a token transformers removes"
    assert chisquare(obs[keep], exp[keep]).pvalue > 1e-3


def test_seeded_generator_reproducible():
    logits = random_logits(50)
    sampling = SamplingConfig()
    a = choose(logits, sampling, make_generator(7, logits.device))
    b = choose(logits, sampling, make_generator(7, logits.device))
    c = choose(logits, sampling, make_generator(8, logits.device))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert make_generator(None, logits.device) is None


def test_token_logprobs_are_raw():
    logits = random_logits()
    tokens = logits.argmax(-1)
    expected = logits.log_softmax(-1).max(-1).values
    assert torch.allclose(token_logprobs(logits, tokens), expected)
