"""Episodes made of recorded responses instead of generated ones, for scoring data with a model.

    episodes = recorded_episodes(records, loaded, max_context=768, max_turns=None)

Dialogues: every agent turn (with at least one utterance before it) is a row whose history is the
recorded conversation so far. Math: the reference solution, split into steps like a generated one.
"""

from __future__ import annotations

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
