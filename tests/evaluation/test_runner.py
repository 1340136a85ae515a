"""The evaluation runner batches prompts shortest first, a dialogue's turns in order when its history is
reused, and hands completions back in prompt order."""

from __future__ import annotations

import dataclasses

import torch

from cagsr.data.config import DataConfig
from cagsr.data.sources import load_records
from cagsr.evaluation.runner import EvalSettings, _dialogue_rows, _generate_timed
from cagsr.models import load_model
from cagsr.rollout.engines.base import Completion, make_engine


class PromptEcho:
    """An engine whose completion of a prompt is the prompt itself; it records each call's prompt lengths."""

    name = "echo"

    def __init__(self):
        self.calls: list[list[int]] = []
        self.sessions: list[list[str] | None] = []
        self.ended: list[str] = []

    def generate(self, prompts, sampling, sessions=None):
        self.calls.append([len(p) for p in prompts])
        self.sessions.append(sessions)
        return [[Completion(token_ids=list(p), finished=True)] for p in prompts]

    def end_session(self, key):
        self.ended.append(key)


def test_batches_are_formed_by_length_and_outputs_keep_prompt_order():
    prompts = [[1] * n for n in (5, 1, 9, 3, 7, 2, 8)]
    engine = PromptEcho()
    outputs, latency = _generate_timed(engine, prompts, max_new_tokens=4, batch=3)
    assert [c.token_ids for c in outputs] == prompts
    assert engine.calls == [[1, 2, 3], [5, 7, 8], [9]]
    assert latency["ms_per_turn"] >= 0


def test_with_sessions_each_dialogue_turn_follows_its_previous_one_and_its_cache_is_freed():
    prompts = [[1] * n for n in (2, 4, 6, 3, 5, 1)]
    dialogues = ["a", "a", "a", "b", "b", "c"]
    engine = PromptEcho()
    outputs, _ = _generate_timed(engine, prompts, max_new_tokens=4, batch=2, sessions=dialogues)
    assert [c.token_ids for c in outputs] == prompts
    assert engine.sessions == [["c", "a"], ["b"], ["a", "b"], ["a"]]  # waves by turn, shortest first
    assert engine.ended == ["c", "b", "a"]


def test_reusing_the_history_gives_the_replies_of_full_prefills():
    torch.manual_seed(0)
    loaded = load_model("tiny-llama")
    loaded.model.float().eval()
    records = load_records(DataConfig(path="generated:dialogue", num_generated=4, seed=1))
    settings = EvalSettings(engine="lean", max_new_tokens=6, max_turns=None, max_context=256, batch_size=3)
    replies = {}
    for reuse in (False, True):
        engine = make_engine("lean", loaded)
        rows, _, _ = _dialogue_rows(loaded, engine, records, dataclasses.replace(settings, reuse_history=reuse), None)
        replies[reuse] = [(r["episode"], r["turn"], r["generated"]) for r in rows]
    assert len(replies[True]) > len(records) and replies[True] == replies[False]


def test_the_evaluated_reward_reads_its_parts_with_the_runs_job():
    """A row's stopping check scores its replies with the reward it trains on: a seeded random part takes the
    job's seed (the run's), not seed 0."""
    from types import SimpleNamespace

    from cagsr.attention.config import AttentionConfig
    from cagsr.evaluation.runner import evaluate
    from cagsr.reward.config import RewardConfig
    from cagsr.reward.definition import define_reward
    from cagsr.salience.config import SalienceConfig

    loaded = load_model("tiny-llama")
    records = load_records(DataConfig(path="generated:dialogue", num_generated=3))
    reward = define_reward(RewardConfig(parts=["attention", "random"]), SalienceConfig(), AttentionConfig(),
                           max_steps=12, corpus=[u.text for r in records for u in r.turns], encoder_decoder=False)
    settings = EvalSettings(engine="hf", max_new_tokens=3, max_turns=1)
    by_seed = [evaluate(loaded, records, settings, reward=reward, reward_job=SimpleNamespace(run=SimpleNamespace(
        seed=seed))).rows for seed in (0, 1)]
    assert by_seed[0][0]["reward"] == by_seed[1][0]["reward"]  # the attention reward does not depend on it
    assert [r["turn_reward"] for r in by_seed[0]] != [r["turn_reward"] for r in by_seed[1]]
