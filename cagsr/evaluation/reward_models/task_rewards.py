"""Task rewards built on the evaluation metrics, reached from cagsr.reward.registry.REWARDS by import path.

    --reward.parts "attention,1.0*correctness"      # chain of thought: attention reward + answer correctness
    --reward.kind quality                           # the positive control: the evaluation's quality itself

`quality` trains on what `cagsr eval` measures against the recorded data (the positive control of a
reproduction): a dialogue reply's coherence with the recorded agent reply at its place (the scripted user
replays the recorded user turns, so every agent turn has one), a chain-of-thought step's match with the
reference steps and the answer turn's correctness.
"""

from __future__ import annotations

from torch import Tensor

from cagsr.data.schema import Dialogue
from cagsr.errors import ConfigError
from cagsr.evaluation.metrics.embedding import Embedder  # model and text cache are shared per process
from cagsr.evaluation.metrics.scores import answer_correct, coherence, split_steps, step_correctness
from cagsr.reward.registry import turn_context, turn_tensor
from cagsr.rollout.episode import Episode


def answer_correctness(episodes: list[Episode], job=None) -> Tensor:
    """1 on a chain of thought's answer turn when its final answer equals the record's, else 0 ("correctness").

    The whole solution is read, as `cagsr eval` reads it; every other turn gets 0.
    """
    if any(ep.kind != "math" for ep in episodes):
        raise ConfigError("reward correctness: needs math problems (a chain of thought with a reference answer)")

    def value(ep: Episode, t: int) -> float:
        return float(t == ep.final_turn and answer_correct(ep.utterances[-1].text, ep.record.answer))

    return turn_tensor(episodes, value)


def gold_reply(record: Dialogue, said: list) -> str:
    """The recorded agent reply that answers the conversation `said` (the utterances before the reply).

    After the k-th user utterance of `said` the record's k-th user turn is found; the reply is the record's
    (a+1)-th agent turn after it, a being the agent utterances `said` already holds after its last user turn.
    A rollout with the scripted user (k user turns, a = 0) gets the agent turn that follows the k-th recorded
    user turn; an evaluated turn (the recorded history itself) gets the recorded reply at its place.

    >>> from cagsr.data.schema import Utterance as U
    >>> d = Dialogue(id="d", turns=[U("user", "hi"), U("agent", "a1"), U("agent", "a2"), U("user", "x"),
    ...                             U("agent", "a3")])
    >>> gold_reply(d, [U("user", "hi")]), gold_reply(d, d.turns[:2]), gold_reply(d, [U("user", "hi"),
    ...     U("agent", "generated"), U("user", "x")])
    ('a1', 'a2', 'a3')
    >>> gold_reply(d, d.turns)    # nothing recorded after it
    ''
    """
    users = sum(u.role == "user" for u in said)
    after_user = len(said) - next((i for i, u in enumerate(reversed(said)) if u.role == "user"), len(said))
    agents_since = sum(u.role == "agent" for u in said[after_user:])
    seen, start = 0, len(record.turns)
    for i, u in enumerate(record.turns):
        seen += u.role == "user"
        if u.role == "user" and seen == users:
            start = i + 1
            break
    later = [u.text for u in record.turns[start:] if u.role == "agent"]
    return later[agents_since] if agents_since < len(later) else ""


def _step_value(ep: Episode, t: int) -> float:
    """Half the share of turn t's steps that match a reference step, divided by the solution's turns that hold
    a step, plus half the answer's correctness on the answer turn: summed over the turns, the mean of the
    evaluation's step correctness and accuracy (exactly when every turn holds one step)."""
    steps = split_steps(ep.turn_texts[t])
    with_steps = sum(bool(split_steps(text)) for text in ep.turn_texts)
    value = 0.5 * step_correctness(steps, ep.record.steps, Embedder()) / with_steps if steps else 0.0
    if t == ep.final_turn:
        value += 0.5 * float(answer_correct(ep.utterances[-1].text, ep.record.answer))
    return value


def reference_quality(episodes: list[Episode], job=None) -> Tensor:
    """The evaluation's quality of each turn against the recorded data ("quality", the positive control).

    Dialogue: coherence (mean of sentence BLEU and BERTScore F1) of each reply with the recorded agent reply at
    its place (`gold_reply`; 0 where the record has none). Chain of thought: `_step_value`.
    """
    if all(ep.kind == "math" for ep in episodes):
        return turn_tensor(episodes, _step_value)
    if any(ep.kind == "math" or not isinstance(ep.record, Dialogue) for ep in episodes):
        raise ConfigError("reward quality: needs recorded dialogues or math problems with reference solutions")
    keys = [(e, t) for e, ep in enumerate(episodes) for t in range(ep.num_turns)]
    golds = [gold_reply(episodes[e].record, turn_context(episodes[e], t)) for e, t in keys]
    out = turn_tensor(episodes, lambda ep, t: 0.0)
    for (e, t), value in zip(keys, coherence([episodes[e].turn_texts[t] for e, t in keys], golds), strict=True):
        out[e, t] = value
    return out
