"""A language model prompted to play the user (by default the frozen reference policy).

The conversation is shown with the roles swapped, so the model writes the customer's next line
as its own (assistant) turn.
"""

from __future__ import annotations

from cagsr.data.schema import Utterance
from cagsr.formatting.history import format_history
from cagsr.models.registry import LoadedModel
from cagsr.rollout.engines.base import SamplingConfig, make_engine
from cagsr.rollout.episode import Episode
from cagsr.rollout.generate import decode_reply

PERSONA = ("You are a customer talking to a support agent about {domain}. Reply with the customer's next "
           "short message only. Refer to details you gave earlier.")


class ModelUser:
    def __init__(self, user_model: LoadedModel | None = None, max_new_tokens: int = 40, seed: int = 0, **_):
        if user_model is None:
            raise ValueError("the model simulator needs a user model (the reference policy by default)")
        self.loaded = user_model
        self.engine = make_engine("hf", user_model)
        self.sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.7)
        self.seed = seed

    def _prompt(self, ep: Episode) -> list[int]:
        # The simulated user sees the dialogue from the other side; the agent's system prompt is not theirs.
        swapped = [Utterance("agent" if u.role == "user" else "user", u.text) for u in ep.utterances
                   if u.role != "system"]
        persona = PERSONA.format(domain=ep.record.domain or "a request")
        turns = [Utterance("user", persona), Utterance("agent", "Understood."), *swapped]
        return format_history(self.loaded.tokenizer, turns, self.loaded.is_encoder_decoder).input_ids

    def next_user_turns(self, episodes: list[Episode]) -> list[str | None]:
        if not episodes:
            return []
        outputs = self.engine.generate([self._prompt(ep) for ep in episodes], self.sampling, seed=self.seed)
        self.seed += 1
        return [decode_reply(self.loaded, cands[0].token_ids) or "Okay." for cands in outputs]
