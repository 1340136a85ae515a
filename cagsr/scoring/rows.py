"""Episodes -> one RowBatch: every Action becomes a teacher-forced row with named masks.

    rows = build_rows(episodes, policy, salience)
    mine = rows.select(rows.rows_of_episodes(torch.tensor([0, 2])))   # padded to the batch's width

A row is one (history, response) pair exactly as the rollout produced it: the reward, the losses
and the Experience all read this per-turn view. How the rows' tokens are laid out for a forward
pass (one sequence per turn, or one per dialogue) is layout.py's business; `continues_previous`
records which rows can share their predecessor's sequence.

Shapes: R rows, N history tokens, S response tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from cagsr.attention.batch import TeacherForcedBatch
from cagsr.formatting.batching import pad_rows
from cagsr.models.registry import LoadedModel
from cagsr.reward.functional import single_turn_history_mask
from cagsr.rollout.episode import Action, Episode
from cagsr.salience.masks import Salience


@dataclass(kw_only=True)
class RowBatch:
    """All rows of a batch of episodes (CPU tensors; slice with `select`), grouped by shape."""

    # [R, N]: history columns (left-padded for decoder-only models, right-padded for seq2seq)
    history_ids: Tensor
    """[R, N] long: the prompt the policy saw."""
    history_mask: Tensor
    """[R, N] bool: real history tokens."""
    salient_mask: Tensor
    """[R, N] bool: salient history tokens."""
    current_mask: Tensor
    """[R, N] bool: tokens of the current prompt x_t (single-turn variant, ablation)."""
    template_mask: Tensor
    """[R, N] bool: chat-template / speaker-tag tokens (outside every utterance's text), e.g. <|im_start|>."""
    special_mask: Tensor
    """[R, N] bool: the tokenizer's special tokens (BOS, <|im_start|>, ...)."""
    # [R, S]: response columns (right-padded)
    response_ids: Tensor
    """[R, S] long: the generated tokens."""
    response_mask: Tensor
    """[R, S] bool: real response tokens (the only ones in the policy loss)."""
    token_turn: Tensor
    """[R, S] long: reward turn of each response token within its episode (-1 on padding)."""
    turn_start: Tensor
    """[R, S] bool: first token of each turn (where V(H_t) is read)."""
    # [R]
    row_episode: Tensor
    """[R] long: which episode each row belongs to."""
    is_cot: Tensor
    """[R] bool: chain-of-thought rows (block checkpoints)."""
    continues_previous: Tensor
    """[R] bool: the row's history is exactly the previous row's history + response (+ more tokens),
    in the same episode, so both can be read in one sequence."""

    def select(self, index: Tensor) -> RowBatch:
        return RowBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def to(self, device) -> RowBatch:
        return RowBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    @property
    def batch(self) -> TeacherForcedBatch:
        """The rows as one padded teacher-forced batch."""
        return TeacherForcedBatch(self.history_ids, self.history_mask, self.response_ids, self.response_mask)

    @property
    def num_rows(self) -> int:
        return self.row_episode.shape[0]

    def reward_inputs(self) -> dict[str, Tensor]:
        """The keyword arguments of reward.attention_reward.turn_components (everything but the capture)."""
        names = ("history_ids", "history_mask", "response_ids", "response_mask", "salient_mask", "current_mask",
                 "template_mask", "special_mask", "token_turn", "is_cot")
        return {name: getattr(self, name) for name in names}

    def rows_of_episodes(self, episodes: Tensor) -> Tensor:
        """Indices of the rows of `episodes` [k], in row order (each episode's rows stay consecutive)."""
        return torch.isin(self.row_episode, episodes).nonzero(as_tuple=True)[0]

    def episode_rows(self, lo: int, hi: int) -> Tensor:
        """Indices of the rows of episodes lo..hi-1: one contiguous block, since rows follow episode order."""
        index = ((self.row_episode >= lo) & (self.row_episode < hi)).nonzero(as_tuple=True)[0]
        if index.numel() and int(index[-1] - index[0]) + 1 != index.numel():
            raise ValueError("rows are not grouped by episode")
        return index


def episode_keywords(ep: Episode) -> list[str]:
    return [str(k) for k in getattr(ep.record, "meta", {}).get("keywords", [])]


def continues(previous: Action, action: Action) -> bool:
    """True when `action`'s prompt starts with exactly the tokens of `previous` (prompt + response).

    False after the history was cut to fit the context, or when a chat template re-renders earlier
    turns (or the decoded reply re-tokenises differently): then the turn needs a sequence of its own.
    """
    prefix = [*previous.history.input_ids, *previous.response_ids]
    return len(action.history.input_ids) >= len(prefix) and action.history.input_ids[: len(prefix)] == prefix


def _current_user_turn(action: Action) -> int:
    """The utterance index of the latest user turn in the history (-2 when there is none)."""
    history = action.history
    return max((t for t, r in zip(history.token_turn, history.token_role, strict=True) if r == "user"), default=-2)


def _history_lists(actions: list[Action], salience: Salience, keywords: list[list[str]], special_ids: set[int]
                   ) -> dict[str, list[list[int]]]:
    """Per-token lists over each row's history, one entry per [R, N] field."""
    return {
        "history_ids": [a.history.input_ids for a in actions],
        "salient_mask": [[int(m) for m in salience.token_mask(a.history, k)] for a, k in zip(actions, keywords,
                                                                                            strict=True)],
        "token_turn": [[t + 2 for t in a.history.token_turn] for a in actions],  # >= 0 for padding
        "template_mask": [[int(r == "template") for r in a.history.token_role] for a in actions],
        "special_mask": [[int(i in special_ids) for i in a.history.input_ids] for a in actions],
    }


def build_rows(episodes: list[Episode], loaded: LoadedModel, salience: Salience) -> RowBatch:
    actions = [a for ep in episodes for a in ep.actions]
    owners = [e for e, ep in enumerate(episodes) for _ in ep.actions]
    keywords = [episode_keywords(ep) for ep in episodes for _ in ep.actions]
    pad_id, left = loaded.tokenizer.pad_token_id, not loaded.is_encoder_decoder
    lists = _history_lists(actions, salience, keywords, set(loaded.tokenizer.all_special_ids))
    history = {name: pad_rows(rows, pad_id if name == "history_ids" else 0, left=left) for name, rows in lists.items()}
    history_ids, history_mask = history["history_ids"]
    history_turn = history["token_turn"][0] - 2  # padding and template tokens -> < 0
    current = torch.tensor([_current_user_turn(a) for a in actions])
    response_ids, response_mask = pad_rows([a.response_ids for a in actions], pad_id, left=False)
    token_turn = pad_rows([[t + 1 for t in a.token_turn] for a in actions], 0, left=False)[0] - 1  # padding -> -1
    previous = torch.cat([torch.full_like(token_turn[:, :1], -1), token_turn[:, :-1]], dim=1)
    follows = [i > 0 and owners[i - 1] == owners[i] and continues(actions[i - 1], a) for i, a in enumerate(actions)]
    return RowBatch(
        history_ids=history_ids,
        history_mask=history_mask,
        salient_mask=history["salient_mask"][0].bool(),
        current_mask=single_turn_history_mask(history_turn, current) & history_mask,
        template_mask=history["template_mask"][0].bool(),
        special_mask=history["special_mask"][0].bool(),
        response_ids=response_ids,
        response_mask=response_mask,
        token_turn=token_turn,
        turn_start=(token_turn >= 0) & (token_turn != previous),
        row_episode=torch.tensor(owners, dtype=torch.long),
        is_cot=torch.tensor([ep.kind == "math" for ep in episodes for _ in ep.actions], dtype=torch.bool),
        continues_previous=torch.tensor(follows, dtype=torch.bool),
    )
