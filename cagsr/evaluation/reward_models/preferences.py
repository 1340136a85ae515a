"""Synthetic preferences, the training data of the synthetic-preference reward model.

    pairs = synthetic_preference_pairs(records, seed=0)                    # dialogues or math problems

Human labels and preference files are read by cagsr.data.taskmaster and cagsr.data.labelled.

Synthetic preferences (method.md section 6, the baseline the paper calls synthetic preference
RL): for a dialogue turn the candidates are the recorded response, another agent turn of the same
dialogue, agent turns of other dialogues, and a truncated and a word-shuffled copy of the recorded
response, ranked by n-gram overlap with the recorded one; for a math problem the candidates are the
reference solution, a truncated, a step-shuffled, a step-dropped and a wrong-number copy of it, and
another problem's solution, ranked by the number of reference steps they reproduce in order.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence

from cagsr.data.labelled import PreferencePair, render_history
from cagsr.data.schema import ANSWER_MARKER, Dialogue, MathProblem, Record
from cagsr.evaluation.metrics.scores import normalise_step
from cagsr.evaluation.metrics.step_threshold import change_last_number

WORD = re.compile(r"\w+")


def ngram_overlap(hyp: str, ref: str, max_n: int = 2) -> float:
    """Mean over n = 1..max_n of the F1 of clipped n-gram matches (lowercased words); 1.0 for equal text."""
    h, r = WORD.findall(hyp.lower()), WORD.findall(ref.lower())
    scores = []
    for n in range(1, max_n + 1):
        hc = Counter(tuple(h[i : i + n]) for i in range(len(h) - n + 1))
        rc = Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
        if not hc or not rc:
            scores.append(1.0 if hc == rc and h == r and h else 0.0)
            continue
        match = sum((hc & rc).values())
        precision, recall = match / sum(hc.values()), match / sum(rc.values())
        scores.append(0.0 if match == 0 else 2 * precision * recall / (precision + recall))
    return sum(scores) / len(scores)


def matching_steps(candidate: Sequence[str], reference: Sequence[str]) -> int:
    """Reference steps reproduced in order: longest common subsequence of normalised steps."""
    a, b = [normalise_step(s) for s in candidate], [normalise_step(s) for s in reference]
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def _shuffled(items: list, rng: random.Random) -> list | None:
    """A different order of items, or None when no different order exists."""
    if len(set(items)) < 2:
        return None
    out = list(items)
    while out == items:
        rng.shuffle(out)
    return out


def dialogue_candidates(
    dialogue: Dialogue, turn: int, others: Sequence[Dialogue], rng: random.Random
) -> list[str]:
    """Candidate responses for one agent turn; the recorded one first."""
    recorded = dialogue.turns[turn].text
    words = recorded.split()
    out = [recorded]
    same = [i for i in dialogue.agent_turn_indices() if i != turn]
    if same:
        out.append(dialogue.turns[rng.choice(same)].text)
    for other in rng.sample(list(others), min(2, len(others))):
        texts = [other.turns[i].text for i in other.agent_turn_indices()]
        if texts:
            out.append(rng.choice(texts))
    if len(words) >= 4:
        out.append(" ".join(words[: len(words) // 2]))
    shuffled = _shuffled(words, rng)
    if shuffled:
        out.append(" ".join(shuffled))
    return list(dict.fromkeys(out))


def math_candidates(
    problem: MathProblem, others: Sequence[MathProblem], rng: random.Random
) -> list[tuple[list[str], str | None]]:
    """Candidate (steps, final answer or None) solutions; the reference first."""
    steps, answer = list(problem.steps), problem.answer
    out: list[tuple[list[str], str | None]] = [(steps, answer)]
    if len(steps) >= 2:
        out.append((steps[: (len(steps) + 1) // 2], None))  # stops half way, no answer
        out.append((steps[:1] + steps[2:], answer))  # skips a step
        shuffled = _shuffled(steps, rng)
        if shuffled:
            out.append((shuffled, answer))
    if steps:
        at = rng.randrange(len(steps))
        wrong = change_last_number(steps[at])
        if wrong:
            out.append((steps[:at] + [wrong] + steps[at + 1 :], answer))
    if others:
        other = rng.choice(list(others))
        out.append((list(other.steps), other.answer))
    return out


def solution_text(steps: Sequence[str], answer: str | None) -> str:
    """The CoT target format: steps on lines, then 'Answer: N' when there is an answer."""
    return "\n".join([*steps, f"{ANSWER_MARKER} {answer}"] if answer is not None else steps)


def _pairs_from_scores(
    context: str,
    texts: list[str],
    scores: list[float],
    margin: float,
    group: str,
    rng: random.Random,
    max_pairs: int,
) -> list[PreferencePair]:
    pairs = [
        PreferencePair(context, texts[i], texts[j], group)
        for i in range(len(texts))
        for j in range(len(texts))
        if scores[i] - scores[j] >= margin and texts[i] != texts[j]
    ]
    return rng.sample(pairs, min(max_pairs, len(pairs)))


def synthetic_preference_pairs(
    records: Sequence[Record],
    seed: int = 0,
    turns_per_dialogue: int = 1,
    max_pairs: int = 6,
    context_turns: int = 4,
    max_context_chars: int = 1000,
    margin: float = 0.1,
) -> list[PreferencePair]:
    """Heuristic preference pairs from dialogues or math problems (see the module docstring).

    Up to `max_pairs` pairs per context; pairs whose overlap differs by less than `margin`
    (dialogue) or that reproduce the same number of steps (math) are skipped as ties.
    """
    rng = random.Random(seed)
    out: list[PreferencePair] = []
    for k, record in enumerate(records):
        others = [records[j] for j in rng.sample(range(len(records)), min(4, len(records))) if j != k]
        if isinstance(record, Dialogue):
            others = [o for o in others if isinstance(o, Dialogue)]
            indices = record.agent_turn_indices()
            for turn in rng.sample(indices, min(turns_per_dialogue, len(indices))):
                context = render_history(record.turns[:turn], context_turns, max_context_chars)
                texts = dialogue_candidates(record, turn, others, rng)
                scores = [ngram_overlap(t, texts[0]) for t in texts]
                out += _pairs_from_scores(context, texts, scores, margin, record.id, rng, max_pairs)
        else:
            others = [o for o in others if isinstance(o, MathProblem)]
            candidates = math_candidates(record, others, rng)
            texts = [solution_text(steps, answer) for steps, answer in candidates]
            scores = [float(matching_steps(steps, record.steps)) for steps, _ in candidates]
            out += _pairs_from_scores(record.question, texts, scores, 1.0, record.id, rng, max_pairs)
    return out
