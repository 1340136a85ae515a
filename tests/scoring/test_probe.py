"""probe_versions reads every reward version from one capture pass and gives what separate probes give."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cagsr.data.config import DataConfig
from cagsr.data.sources import load_records
from cagsr.evaluation.runner import default_definition
from cagsr.models import load_model
from cagsr.rollout.recorded import recorded_episodes
from cagsr.scoring import passes
from cagsr.scoring.probe import probe, probe_versions


@pytest.mark.parametrize("kind", ["dialogue", "math"])
def test_versions_from_one_pass_equal_one_probe_each(kind, monkeypatch):
    torch.manual_seed(0)
    loaded = load_model("tiny-llama")
    loaded.model.float().eval()
    records = load_records(DataConfig(path=f"generated:{kind}", num_generated=5, seed=2))
    episodes = recorded_episodes(records, loaded, max_context=256, max_turns=3, max_steps=4)
    definition = default_definition(loaded, records)
    # head_signals: probe() reports the per-head lookback too, so the one-pass versions ask for it as well.
    rewards = {v: dataclasses.replace(definition.terms, history_tokens=v, head_signals=True) for v in ("all", "content")}
    separate = {v: probe(episodes, loaded, dataclasses.replace(definition, terms=r), batch_episodes=2)
                for v, r in rewards.items()}

    calls = []
    capture = passes._capture
    monkeypatch.setattr(passes, "_capture", lambda *a: calls.append(1) or capture(*a))
    together = probe_versions(episodes, loaded, definition, rewards, batch_episodes=2)

    assert together == separate
    assert together["all"] != together["content"]  # the versions really differ
    assert len(calls) == 3  # one capture pass per chunk of 2 episodes, not one per version
