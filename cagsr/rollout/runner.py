"""Batched rollouts of whole episodes: multi-turn dialogues and chain-of-thought solutions.

    episodes = rollout(records, policy, engine, simulator, cfg, rng)

Every active episode of a batch generates its turn together (one engine call per turn, one reply
each); variable-length histories are padded by the engine.
"""

from __future__ import annotations

import random

from cagsr.data.schema import Dialogue, MathProblem, Utterance
from cagsr.formatting.history import FormattedHistory, format_history
from cagsr.models.registry import LoadedModel
from cagsr.rollout.config import RolloutConfig
from cagsr.rollout.engines.base import Completion, Engine
from cagsr.rollout.episode import Action, Episode, split_steps
from cagsr.rollout.generate import decode_reply
from cagsr.rollout.history_ext import extend_history
from cagsr.rollout.simulators import UserSimulator, opening


def _generate(prompts: list[FormattedHistory], engine: Engine, cfg: RolloutConfig, rng: random.Random,
              sampling=None, sessions: list | None = None) -> list[Completion]:
    """One reply per prompt (the engine's default: one candidate)."""
    sampling = sampling or cfg.sampling
    outputs = engine.generate([p.input_ids for p in prompts], sampling, seed=rng.randrange(2**31),
                              sessions=sessions)
    return [candidates[0] for candidates in outputs]


def rollout_dialogues(records: list[Dialogue], policy: LoadedModel, engine: Engine, simulator: UserSimulator,
                      cfg: RolloutConfig, rng: random.Random) -> list[Episode]:
    episodes = [Episode(record=r, kind="dialogue", utterances=opening(r)) for r in records]
    budget = cfg.max_context - cfg.sampling.max_new_tokens
    for turn in range(cfg.turns):
        active = [ep for ep in episodes if not ep.done]
        if not active:
            break
        prompts = [format_history(policy.tokenizer, ep.utterances, policy.is_encoder_decoder, budget)
                   for ep in active]
        chosen = _generate(prompts, engine, cfg, rng, sessions=[id(ep) for ep in active])
        for ep, prompt, completion in zip(active, prompts, chosen, strict=True):
            text = decode_reply(policy, completion.token_ids)
            ids = completion.token_ids or [policy.eos_token_id]
            ep.actions.append(Action(prompt, ids, [turn] * len(ids), completion.finished))
            ep.utterances.append(Utterance("agent", text))
            ep.turn_texts.append(text)
        if turn == cfg.turns - 1:
            break
        for ep, reply in zip(active, simulator.next_user_turns(active), strict=True):
            if reply is None:
                ep.done = True
            else:
                ep.utterances.append(Utterance("user", reply))
    if hasattr(engine, "end_session"):  # free the per-episode KV caches
        for ep in episodes:
            engine.end_session(id(ep))
    return episodes


def rollout_cot(records: list[MathProblem], policy: LoadedModel, engine: Engine, cfg: RolloutConfig,
                rng: random.Random) -> list[Episode]:
    """One solution per problem, split into steps; decoder-only models get one row per step (its
    history is the question plus all earlier steps), seq2seq one row whose tokens carry step labels
    (the cross-attention sees the question only)."""
    tok = policy.tokenizer
    episodes = [Episode(record=r, kind="math", utterances=[Utterance("user", r.question)]) for r in records]
    prompts = [format_history(tok, ep.utterances, policy.is_encoder_decoder, cfg.max_context) for ep in episodes]
    sampling = type(cfg.sampling)(**{**vars(cfg.sampling), "max_new_tokens": cfg.cot_max_new_tokens})
    chosen = _generate(prompts, engine, cfg, rng, sampling)
    for ep, prompt, completion in zip(episodes, prompts, chosen, strict=True):
        fill_cot_episode(ep, prompt, completion.token_ids or [policy.eos_token_id], completion.finished, policy,
                         cfg.max_steps)
    return episodes


def fill_cot_episode(ep: Episode, prompt: FormattedHistory, ids: list[int], finished: bool, policy: LoadedModel,
                     max_steps: int) -> None:
    """Split a solution into steps and add its rows: one per step (decoder-only), or one labelled row."""
    tok = policy.tokenizer
    token_turn, texts, answer = split_steps(tok, ids, max_steps)
    ep.turn_texts, ep.final_turn, ep.done = texts, answer, True
    ep.utterances.append(Utterance("agent", decode_reply(policy, ids)))
    if policy.is_encoder_decoder:
        ep.actions.append(Action(prompt, ids, token_turn, finished))
        return
    start = 0
    for step in range(len(texts)):
        end = start + token_turn.count(step)
        history = extend_history(prompt, tok, ids[:start], turn_of=token_turn[:start], first_turn=1)
        ep.actions.append(Action(history, ids[start:end], [step] * (end - start), finished and end == len(ids)))
        start = end


def rollout(records: list, policy: LoadedModel, engine: Engine, simulator: UserSimulator | None,
            cfg: RolloutConfig, rng: random.Random) -> list[Episode]:
    if records and isinstance(records[0], MathProblem):
        return rollout_cot(records, policy, engine, cfg, rng)
    assert simulator is not None, "dialogue rollouts need a user simulator"
    return rollout_dialogues(records, policy, engine, simulator, cfg, rng)
