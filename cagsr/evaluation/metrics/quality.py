"""Cheap quality proxies of generated episodes, logged beside the reward to catch reward hacking."""

from __future__ import annotations

from cagsr.data.schema import Dialogue
from cagsr.evaluation.metrics.scores import answer_correct, sentence_bleu
from cagsr.rollout.episode import Episode


def distinct_n(texts: list[str], n: int = 2) -> float:
    """Share of distinct n-grams among all n-grams of the texts: low means collapsed, repetitive text."""
    grams = [tuple(t.split()[i : i + n]) for t in texts for i in range(max(0, len(t.split()) - n + 1))]
    return len(set(grams)) / len(grams) if grams else 0.0


def episode_quality(episodes: list[Episode]) -> dict[str, float]:
    """Cheap quality proxies of held-out episodes, logged beside the reward to catch reward hacking.

    Dialogues (scripted user turns): sentence BLEU of each agent turn against the recorded agent turn
    at the same place. Math: the share of correct final answers.
    """
    bleu, correct = [], []
    for ep in episodes:
        if ep.kind == "math":
            correct.append(float(answer_correct(ep.utterances[-1].text, ep.record.answer)))
        elif isinstance(ep.record, Dialogue):
            first_user = next(i for i, u in enumerate(ep.record.turns) if u.role == "user")
            recorded = [u.text for u in ep.record.turns[first_user + 1 :] if u.role == "agent"]
            bleu += [sentence_bleu(text, ref) for text, ref in zip(ep.turn_texts, recorded, strict=False)]
    out = {}
    if bleu:
        out["eval/bleu"] = sum(bleu) / len(bleu)
    if correct:
        out["eval/accuracy"] = sum(correct) / len(correct)
    return out
