"""Episodes made of recorded responses instead of generated ones, for scoring data with a model.

    episodes = recorded_episodes(records, loaded, max_context=768, max_turns=None)

Dialogues: every agent turn (with at least one utterance before it) is a row whose history is the
recorded conversation so far. Math: the reference solution, split into steps like a generated one.
"""

from __future__ import annotations

import dataclasses

from cagsr.data.schema import Dialogue, MathProblem, Record, Utterance
from cagsr.formatting.history import format_history, format_response
from cagsr.models.registry import LoadedModel
from cagsr.rollout.episode import Action, Episode
from cagsr.rollout.runner import fill_cot_episode


def _dialogue_episode(record: Dialogue, loaded: LoadedModel, max_context: int, max_turns: int | None) -> Episode:
    ep = Episode(record=record, kind="dialogue", done=True)
    indices = record.agent_turn_indices()[:max_turns]
    for turn, i in enumerate(indices):
        response = format_response(loaded.tokenizer, record.turns[i].text, loaded.eos_token_id)
        history = format_history(loaded.tokenizer, record.turns[:i], loaded.is_encoder_decoder,
                                 max_tokens=max(16, max_context - len(response)))
        ep.actions.append(Action(history, response, [turn] * len(response), True))
        ep.turn_texts.append(record.turns[i].text)
    ep.utterances = [Utterance(u.role, u.text) for u in record.turns[: (indices[-1] + 1) if indices else 0]]
    return ep


def _math_episode(record: MathProblem, loaded: LoadedModel, max_context: int, max_steps: int) -> Episode:
    ep = Episode(record=record, kind="math", utterances=[Utterance("user", record.question)])
    prompt = format_history(loaded.tokenizer, ep.utterances, loaded.is_encoder_decoder, max_context)
    ids = format_response(loaded.tokenizer, record.solution_text(), loaded.eos_token_id)
    fill_cot_episode(ep, prompt, ids, True, loaded, max_steps)
    return ep


def recorded_episodes(records: list[Record], loaded: LoadedModel, max_context: int = 768,
                      max_turns: int | None = None, max_steps: int = 12) -> list[Episode]:
    out = []
    for record in records:
        if isinstance(record, MathProblem):
            out.append(_math_episode(record, loaded, max_context, max_steps))
        else:
            episode = _dialogue_episode(record, loaded, max_context, max_turns)
            if episode.actions:
                out.append(episode)
    return out


# -- held-out episodes a run logged, read back token for token ---------------------------------------
def record_to_dict(record: Record) -> dict:
    """A record as plain JSON values (the type named), for a run's held-out log."""
    return {"type": type(record).__name__, **dataclasses.asdict(record)}


def record_from_dict(data: dict) -> Record:
    data = dict(data)
    kind = data.pop("type")
    if kind == "MathProblem":
        return MathProblem(**data)
    return Dialogue(**{**data, "turns": [Utterance(**u) for u in data["turns"]]})


def replay_record(ep: Episode, prompt_tokens: int) -> dict:
    """What rebuilds `ep` exactly (replayed_episode): its record, its utterances, every generated token.

    prompt_tokens: the history budget the rollout formatted each prompt with (a dialogue's
    rollout.max_context - max_new_tokens; a chain of thought's rollout.max_context)."""
    responses, finished = [a.response_ids for a in ep.actions], [a.finished for a in ep.actions]
    if ep.kind == "math":  # one solution (its last step ends it), split into steps again on replay
        responses, finished = [[i for ids in responses for i in ids]], finished[-1:]
    return {"kind": ep.kind, "record": record_to_dict(ep.record), "prompt_tokens": prompt_tokens,
            "utterances": [[u.role, u.text] for u in ep.utterances], "responses": responses, "finished": finished}


def replayed_episode(replay: dict, loaded: LoadedModel, max_steps: int) -> Episode:
    """The Episode `replay_record` recorded, with the same prompts and response tokens."""
    record = record_from_dict(replay["record"])
    utterances = [Utterance(role, text) for role, text in replay["utterances"]]
    budget, tok = replay["prompt_tokens"], loaded.tokenizer
    if replay["kind"] == "math":
        ep = Episode(record=record, kind="math", utterances=utterances[:1])
        prompt = format_history(tok, ep.utterances, loaded.is_encoder_decoder, budget)
        fill_cot_episode(ep, prompt, replay["responses"][0], replay["finished"][0], loaded, max_steps)
        return ep
    ep = Episode(record=record, kind="dialogue", utterances=utterances, done=True)
    first_user = next(i for i, u in enumerate(utterances) if u.role == "user")
    replies = [j for j, u in enumerate(utterances) if u.role == "agent" and j > first_user]
    for turn, (j, ids, finished) in enumerate(zip(replies, replay["responses"], replay["finished"], strict=True)):
        prompt = format_history(tok, utterances[:j], loaded.is_encoder_decoder, budget)
        ep.actions.append(Action(prompt, ids, [turn] * len(ids), finished))
        ep.turn_texts.append(utterances[j].text)
    return ep
