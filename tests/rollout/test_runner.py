import random

import pytest

from cagsr.config import from_dict
from cagsr.data.generate import generate_dialogues, generate_math
from cagsr.errors import ConfigError
from cagsr.ppo.config import TrainJob
from cagsr.rollout.config import RolloutConfig
from cagsr.rollout.engines.base import SamplingConfig, make_engine
from cagsr.rollout.episode import split_steps
from cagsr.rollout.runner import rollout
from cagsr.rollout.simulators import make_simulator


def cfg(**over):
    return RolloutConfig(
        engine="hf", turns=3, max_context=256, sampling=SamplingConfig(max_new_tokens=6), **over
    )


def test_dialogue_rollout_alternates_policy_and_simulator(tiny_llama):
    records = generate_dialogues(3)
    engine = make_engine("hf", tiny_llama)
    for name in ("scripted", "rules"):
        episodes = rollout(records, tiny_llama, engine, make_simulator(name, seed=0), cfg(), random.Random(0))
        for ep in episodes:
            roles = [u.role for u in ep.utterances]
            assert roles[0] == "user" and roles[1] == "agent"
            assert all(a != b for a, b in zip(roles, roles[1:], strict=False))
            assert len(ep.actions) == ep.num_turns == 3
            assert [a.token_turn[0] for a in ep.actions] == [0, 1, 2]
            # each turn's history is longer than the previous one: it contains it
            lengths = [len(a.history.input_ids) for a in ep.actions]
            assert lengths == sorted(lengths)
        if name == "scripted":
            recorded = [u.text for u in records[0].turns if u.role == "user"]
            assert [u.text for u in episodes[0].utterances if u.role == "user"] == recorded[:3]


def test_model_simulator_plays_the_user(tiny_llama):
    sim = make_simulator("model", user_model=tiny_llama, max_new_tokens=5)
    episodes = rollout(
        generate_dialogues(2), tiny_llama, make_engine("hf", tiny_llama), sim, cfg(), random.Random(0)
    )
    assert all(len(ep.utterances) == 6 for ep in episodes)


def test_cot_rollout_rows_per_step_and_seq2seq_single_row(tiny_llama, tiny_t5):
    problems = generate_math(2)
    c = cfg(cot_max_new_tokens=12)
    for loaded in (tiny_llama, tiny_t5):
        episodes = rollout(problems, loaded, make_engine("hf", loaded), None, c, random.Random(0))
        for ep in episodes:
            assert ep.final_turn is not None and ep.num_turns >= 1
            tokens = [t for a in ep.actions for t in a.token_turn]
            assert sorted(set(tokens)) == list(range(ep.num_turns))
            if not loaded.is_encoder_decoder:
                assert len(ep.actions) == ep.num_turns
                assert (
                    ep.actions[-1].history.input_ids[: len(ep.actions[0].history.input_ids)]
                    == ep.actions[0].history.input_ids
                )


def test_split_steps_finds_steps_and_answer(tiny_llama):
    tok = tiny_llama.tokenizer
    ids = tok("First 2 + 2 = 4.\nThen 4 x 3 = 12.\nAnswer: 12", add_special_tokens=False)["input_ids"]
    token_turn, texts, answer = split_steps(tok, [*ids, tiny_llama.eos_token_id])
    assert texts == ["First 2 + 2 = 4.", "Then 4 x 3 = 12.", "Answer: 12"] and answer == 2
    assert len(token_turn) == len(ids) + 1 and token_turn[-1] == 2


def test_the_rollout_takes_one_reply_per_turn():
    with pytest.raises(ConfigError, match="rollout.sampling.num_candidates was removed: the rollout continues"):
        from_dict(TrainJob, {"rollout": {"sampling": {"num_candidates": 4}}})
    with pytest.raises(ConfigError, match="unknown config key 'rollout.select'"):
        from_dict(TrainJob, {"rollout": {"select": "best"}})
