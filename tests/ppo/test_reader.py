"""reward.reader: the reward (attention and log-prob signals) read from the reference's pass, with no extra
forward pass; and the pass signals as reward parts and kinds in `cagsr train`."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch

from cagsr.config import from_dict, load_job, to_dict
from cagsr.ppo.config import TrainJob
from cagsr.ppo.trainer import Trainer
from cagsr.reward.combine import attention_reward
from cagsr.scoring.passes import SIGNALS, score_rows
from cagsr.scoring.rows import build_rows


def job(tmp_path, **ppo):
    merged = to_dict(load_job(TrainJob, "tiny", {}))
    merged["run"] |= {"output_dir": str(tmp_path / "run"), "progress": False}
    merged["ppo"] |= ppo
    return from_dict(TrainJob, merged)


def count_forwards(*modules):
    """A list holding one count per module, incremented by every top-level forward call."""
    counts = [0] * len(modules)
    handles = []
    for i, module in enumerate(modules):
        def hook(*_, i=i):
            counts[i] += 1
        handles.append(module.register_forward_pre_hook(hook))
    return counts, handles


def test_reference_reader_gives_the_reference_pass_numbers_with_no_extra_pass(tmp_path):
    trainer = Trainer(job(tmp_path, iterations=1))
    models = trainer.models
    with torch.no_grad():  # move the policy away from the reference, so whose attention is read shows
        for p in models.policy.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    episodes, lo, hi = trainer.rollout_batch()
    rows = build_rows(episodes, models.policy, trainer.salience)
    n_turns = max(ep.num_turns for ep in episodes)
    scored, passes = {}, {}
    for reader in ("policy", "reference"):
        trainer.use_definition(dataclasses.replace(trainer.definition, reader=reader))
        counts, handles = count_forwards(models.policy.model, models.reference)
        scored[reader] = trainer.score(rows, episodes, lo, hi, {})
        passes[reader] = tuple(counts)
        for h in handles:
            h.remove()
    assert passes["reference"] == passes["policy"] == (1, 1)  # one pass each, whoever is read
    separate = {name: score_rows(model, rows, n_episodes=len(episodes), n_turns=n_turns, attention=trainer.job.attention,
                                 reward=trainer.job.reward, scoring=trainer.job.scoring)
                for name, model in (("policy", models.policy.model), ("reference", models.reference))}
    # Same code path on the same weights and tokens: equal up to float32 summation order (measured 0 here).
    tol = {"atol": 1e-6, "rtol": 1e-6}
    for reader in ("policy", "reference"):
        for key in SIGNALS:
            torch.testing.assert_close(scored[reader].components[key], separate[reader].components[key], **tol,
                                       msg=f"{reader} {key}")
        assert torch.equal(scored[reader].components["turn_mask"], separate[reader].components["turn_mask"])
    mask = scored["reference"].components["turn_mask"]
    assert not torch.allclose(separate["policy"].components["coverage"][mask],
                              separate["reference"].components["coverage"][mask])
    torch.testing.assert_close(scored["reference"].ref_logprobs, separate["reference"].logprobs, **tol)
    torch.testing.assert_close(scored["reference"].old_logprobs, separate["policy"].logprobs, atol=1e-4, rtol=1e-4)
    expected = attention_reward(separate["reference"].components, trainer.definition.terms.weights)
    torch.testing.assert_close(scored["reference"].rewards, expected * mask, **tol)


def cagsr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cagsr", *args, "--run.threads", "1"], capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("reward", [["--reward.parts", "attention,0.5*self_certainty,-0.1*random"],
                                    ["--reward.kind", "self_certainty", "--reward.reader", "reference"]])
def test_train_on_a_pass_signal(tmp_path, reward):
    out = cagsr("train", "--config", "tiny", "--iterations", "1", *reward, "--output-dir", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    sc = metrics["reward/self_certainty"]
    assert sc > 0 and metrics["eval/self_certainty"] > 0  # KL(uniform || p) of a real distribution
    if "--reward.parts" in reward:
        assert 0 <= metrics["reward/random"] < 1
        expected = metrics["reward/reward"] + 0.5 * sc - 0.1 * metrics["reward/random"]
        assert metrics["reward/turn_reward"] == pytest.approx(expected, rel=1e-4)
    else:
        assert metrics["reward/turn_reward"] == pytest.approx(sc, rel=1e-5)


def test_train_on_the_per_head_lookback(tmp_path):
    """mean_lookback (every head's lookback ratio, from the capture pass's per-head statistics) as a part."""
    out = cagsr("train", "--config", "tiny", "--iterations", "1", "--reward.parts", "attention,0.5*mean_lookback",
                "--output-dir", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    lookback = metrics["reward/mean_lookback"]
    assert 0 < lookback <= 1 and 0 < metrics["eval/mean_lookback"] <= 1
    expected = metrics["reward/reward"] + 0.5 * lookback
    assert metrics["reward/turn_reward"] == pytest.approx(expected, rel=1e-4)
