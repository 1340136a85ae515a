"""Convenience generation over supervised pairs: greedy replies for samples and quick checks."""

from __future__ import annotations

from cagsr.formatting.examples import Pair
from cagsr.models.registry import LoadedModel
from cagsr.rollout.engines.base import SamplingConfig, make_engine


def decode_reply(loaded: LoadedModel, token_ids: list[int]) -> str:
    return loaded.tokenizer.decode(token_ids, skip_special_tokens=True).strip()


def greedy_replies(loaded: LoadedModel, pairs: list[Pair], max_new_tokens: int = 48, engine: str = "hf"
                   ) -> list[dict]:
    """One greedy reply per pair: {record_id, turn, prompt (last turn), reference, generated}."""
    if not pairs:
        return []
    sampling = SamplingConfig(do_sample=False, max_new_tokens=max_new_tokens)
    outputs = make_engine(engine, loaded).generate([p.history.input_ids for p in pairs], sampling)
    rows = []
    for pair, (completion,) in zip(pairs, outputs, strict=True):
        last_turn = pair.history.turn_spans[-1]
        rows.append({
            "record_id": pair.record_id, "turn": pair.turn_index,
            "prompt": pair.history.text[last_turn[0] : last_turn[1]],
            "reference": pair.response_text, "generated": decode_reply(loaded, completion.token_ids),
        })
    return rows
