"""The evaluation runner batches prompts shortest first and hands completions back in prompt order."""

from __future__ import annotations

from cagsr.evaluation.runner import _generate_timed
from cagsr.rollout.engines.base import Completion


class PromptEcho:
    """An engine whose completion of a prompt is the prompt itself; it records each call's prompt lengths."""

    name = "echo"

    def __init__(self):
        self.calls: list[list[int]] = []

    def generate(self, prompts, sampling):
        self.calls.append([len(p) for p in prompts])
        return [[Completion(token_ids=list(p), finished=True)] for p in prompts]


def test_batches_are_formed_by_length_and_outputs_keep_prompt_order():
    prompts = [[1] * n for n in (5, 1, 9, 3, 7, 2, 8)]
    engine = PromptEcho()
    outputs, latency = _generate_timed(engine, prompts, max_new_tokens=4, batch=3)
    assert [c.token_ids for c in outputs] == prompts
    assert engine.calls == [[1, 2, 3], [5, 7, 8], [9]]
    assert latency["ms_per_turn"] >= 0
