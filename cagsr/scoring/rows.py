"""Episodes -> one RowBatch: every Action becomes a padded teacher-forced row with named masks.

    rows = build_rows(episodes, policy, salience)
    mine = rows.select(rows.episode_rows(lo, hi))   # a rank's share, padded to the batch's width

Shapes: R rows, N history tokens, S response tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from cagsr.attention.batch import TeacherForcedBatch
from cagsr.formatting.batching import collate_pairs, pad_rows
from cagsr.models.registry import LoadedModel
from cagsr.rollout.episode import Episode
from cagsr.salience.masks import Salience


@dataclass
class RowBatch:
    """All rows of a batch of episodes (CPU tensors; slice with `select`)."""

    batch: TeacherForcedBatch
    """history [R, N] / response [R, S] ids and masks."""
    token_turn: Tensor
    """[R, S] long: reward turn of each response token within its episode (-1 on padding)."""
    turn_start: Tensor
    """[R, S] bool: first token of each turn (where V(H_t) is read)."""
    salient_mask: Tensor
    """[R, N] bool: salient history tokens."""
    current_mask: Tensor
    """[R, N] bool: tokens of the current prompt x_t (single-turn variant, ablation)."""
    template_mask: Tensor
    """[R, N] bool: chat-template / speaker-tag tokens (outside every utterance's text), e.g. <|im_start|>."""
    special_mask: Tensor
    """[R, N] bool: the tokenizer's special tokens (BOS, <|im_start|>, ...)."""
    row_episode: Tensor
    """[R] long: which episode each row belongs to."""
    is_cot: Tensor
    """[R] bool: chain-of-thought rows (block checkpoints)."""

    def select(self, index: Tensor) -> RowBatch:
        b = self.batch
        tf = TeacherForcedBatch(
            b.history_ids[index], b.history_mask[index], b.response_ids[index], b.response_mask[index]
        )
        return RowBatch(
            tf,
            self.token_turn[index],
            self.turn_start[index],
            self.salient_mask[index],
            self.current_mask[index],
            self.template_mask[index],
            self.special_mask[index],
            self.row_episode[index],
            self.is_cot[index],
        )

    def to(self, device) -> RowBatch:
        return RowBatch(
            self.batch.to(device),
            *(
                t.to(device)
                for t in (
                    self.token_turn,
                    self.turn_start,
                    self.salient_mask,
                    self.current_mask,
                    self.template_mask,
                    self.special_mask,
                    self.row_episode,
                    self.is_cot,
                )
            ),
        )

    def reward_inputs(self) -> dict[str, Tensor]:
        """The keyword arguments of reward.attention_reward.turn_components (everything but the capture)."""
        b = self.batch
        return {"history_ids": b.history_ids, "history_mask": b.history_mask, "response_ids": b.response_ids,
                "response_mask": b.response_mask, "salient_mask": self.salient_mask,
                "current_mask": self.current_mask, "template_mask": self.template_mask,
                "special_mask": self.special_mask, "token_turn": self.token_turn, "is_cot": self.is_cot}

    @property
    def num_rows(self) -> int:
        return self.row_episode.shape[0]

    def episode_rows(self, lo: int, hi: int) -> Tensor:
        """Indices of the rows of episodes lo..hi-1: one contiguous block, since rows follow episode order."""
        index = ((self.row_episode >= lo) & (self.row_episode < hi)).nonzero(as_tuple=True)[0]
        if index.numel() and int(index[-1] - index[0]) + 1 != index.numel():
            raise ValueError("rows are not grouped by episode")
        return index


def _current_turn_mask(token_turn: list[int], token_role: list[str]) -> list[bool]:
    """Tokens of the latest user turn in the history (the prompt x_t)."""
    user_turns = [t for t, r in zip(token_turn, token_role, strict=True) if r == "user"]
    current = max(user_turns) if user_turns else -2
    return [t == current for t in token_turn]


def episode_keywords(ep: Episode) -> list[str]:
    return [str(k) for k in getattr(ep.record, "meta", {}).get("keywords", [])]


def build_rows(episodes: list[Episode], loaded: LoadedModel, salience: Salience) -> RowBatch:
    histories, responses, turns, salient, current, owners, cot = [], [], [], [], [], [], []
    template, special = [], []
    special_ids = set(loaded.tokenizer.all_special_ids)
    for e, ep in enumerate(episodes):
        keywords = episode_keywords(ep)
        for action in ep.actions:
            histories.append(action.history.input_ids)
            responses.append(action.response_ids)
            turns.append(action.token_turn)
            salient.append([int(m) for m in salience.token_mask(action.history, keywords)])
            current.append(
                [int(m) for m in _current_turn_mask(action.history.token_turn, action.history.token_role)]
            )
            template.append([int(r == "template") for r in action.history.token_role])
            special.append([int(i in special_ids) for i in action.history.input_ids])
            owners.append(e)
            cot.append(ep.kind == "math")
    left = not loaded.is_encoder_decoder
    batch = collate_pairs(histories, responses, loaded.tokenizer.pad_token_id, loaded.is_encoder_decoder)
    token_turn, _ = pad_rows([[t + 1 for t in row] for row in turns], 0, left=False)
    token_turn = token_turn - 1  # padding -> -1
    previous = torch.cat([torch.full_like(token_turn[:, :1], -1), token_turn[:, :-1]], dim=1)
    turn_start = (token_turn >= 0) & (token_turn != previous)
    salient_mask = pad_rows(salient, 0, left=left)[0].bool()
    current_mask = pad_rows(current, 0, left=left)[0].bool()
    template_mask = pad_rows(template, 0, left=left)[0].bool()
    special_mask = pad_rows(special, 0, left=left)[0].bool()
    return RowBatch(batch, token_turn, turn_start, salient_mask, current_mask, template_mask, special_mask,
                    torch.tensor(owners), torch.tensor(cot))
