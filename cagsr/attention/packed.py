"""Padding-free batches: token sequences laid end to end in rows, read back as per-turn views.

Shapes: P rows, L columns, R views, N history tokens and S response tokens of the widest view.

A *sequence* is one run of token ids that the model reads causally from position 0: one
(history, response) pair, or a whole dialogue whose turns follow each other. A *view* is one
(history, response) pair inside a sequence: the history is the view's first N_r tokens of the
sequence, its response the next S_r. Views of one sequence share its tokens, so a dialogue of T
turns is read once instead of T times.

Rows hold one or more sequences each; `position_ids` restart at 0 where a sequence starts, which
is how transformers' mask builder keeps packed sequences apart (each attends only to itself), and
again where the row's padding tail starts. Outputs come back in the view layout of a padded
TeacherForcedBatch: histories left-aligned to column N - 1 (history column c of view r is the
sequence position c - (N - N_r)), responses right-padded, so the reward reads the same tensors
whichever way the tokens were laid out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True, kw_only=True)
class SequenceView:
    """Where one (history, response) pair sits in its sequence."""

    history_len: int
    """N_r: the view's history is the sequence's first N_r tokens."""
    response_len: int
    """S_r: its response is the next S_r tokens."""


@dataclass(kw_only=True)
class PackedBatch:
    """Rows of packed sequences and where each view's tokens are."""

    input_ids: Tensor
    """[P, L] token ids (pad id after the last sequence of a row)."""
    position_ids: Tensor
    """[P, L] position of each token within its sequence (the padding tail counts from 0 too)."""
    view_row: Tensor
    """[R] the row holding each view."""
    view_start: Tensor
    """[R] column where each view's sequence starts in its row."""
    history_len: Tensor
    """[R] N_r."""
    response_len: Tensor
    """[R] S_r."""
    n_history: int
    """N: history columns of the view layout (at least max N_r)."""
    n_response: int
    """S: response columns of the view layout (at least max S_r)."""

    @property
    def num_views(self) -> int:
        return int(self.view_row.shape[0])

    @property
    def real_tokens(self) -> int:
        """Tokens of the sequences (the padding tails left out)."""
        return sum(self.sequence_lengths())

    def sequence_lengths(self) -> list[int]:
        """Length of every sequence: its longest view (a sequence starts where its views start)."""
        ends: dict[tuple[int, int], int] = {}
        view_end = self.view_start + self.history_len + self.response_len
        for row, start, end in zip(self.view_row.tolist(), self.view_start.tolist(), view_end.tolist(), strict=True):
            ends[row, start] = max(ends.get((row, start), 0), end)
        return [end - start for (_, start), end in ends.items()]

    def to(self, device: torch.device | str) -> PackedBatch:
        moved = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in vars(self).items()}
        return PackedBatch(**moved)

    def response_positions(self) -> tuple[Tensor, Tensor]:
        """[R, S] flat index (row * L + column) of the position whose output predicts y_s, and
        [R, S] bool validity (s < S_r). Invalid entries point at a valid position of the view."""
        s = torch.arange(self.n_response, device=self.input_ids.device)
        valid = s[None, :] < self.response_len[:, None]
        column = self.view_start[:, None] + self.history_len[:, None] - 1 + s[None, :].clamp(min=0)
        last = self.view_start + self.history_len + self.response_len - 2
        column = torch.minimum(column, last[:, None])
        return self.view_row[:, None] * self.input_ids.shape[1] + column, valid

    def history_mask(self) -> Tensor:
        """[R, N] bool: real history columns of the view layout (left-padded)."""
        c = torch.arange(self.n_history, device=self.input_ids.device)
        return c[None, :] >= self.n_history - self.history_len[:, None]

    def response_mask(self) -> Tensor:
        """[R, S] bool: real response columns of the view layout (right-padded)."""
        s = torch.arange(self.n_response, device=self.input_ids.device)
        return s[None, :] < self.response_len[:, None]

    def key_of_column(self) -> Tensor:
        """[R, N] row column of the token behind each history column of the view layout (-1: padding)."""
        c = torch.arange(self.n_history, device=self.input_ids.device)
        offset = c[None, :] - (self.n_history - self.history_len[:, None])
        return torch.where(offset >= 0, self.view_start[:, None] + offset, -1)


def pack_sequences(
    sequences: list[list[int]],
    views: list[list[SequenceView]],
    *,
    row_width: int,
    pad_id: int,
    n_history: int = 0,
    n_response: int = 0,
) -> PackedBatch:
    """Sequences -> rows of at most max(row_width, longest sequence) columns, first fit in the given
    order (a sequence longer than row_width gets a row of its own). Views are numbered in order:
    all views of sequence 0, then of sequence 1, and so on. n_history / n_response widen the view
    layout (to match a RowBatch's columns); by default it is as wide as the widest view."""
    width = max(row_width, max(len(s) for s in sequences))
    rows: list[list[int]] = []
    placed: list[tuple[int, int]] = []  # (row, start column) of each sequence
    for seq in sequences:
        row = next((i for i, r in enumerate(rows) if len(r) + len(seq) <= width), None)
        if row is None:
            rows.append([])
            row = len(rows) - 1
        placed.append((row, len(rows[row])))
        rows[row].extend(seq)
    columns = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), columns), pad_id, dtype=torch.long)
    position_ids = torch.zeros_like(input_ids)
    for (row, start), seq in zip(placed, sequences, strict=True):
        input_ids[row, start : start + len(seq)] = torch.tensor(seq, dtype=torch.long)
        position_ids[row, start : start + len(seq)] = torch.arange(len(seq))
    for row, ids in enumerate(rows):  # the padding tail is a sequence of its own
        position_ids[row, len(ids) :] = torch.arange(columns - len(ids))
    flat = [(placed[i], v) for i, seq_views in enumerate(views) for v in seq_views]
    return PackedBatch(
        input_ids=input_ids,
        position_ids=position_ids,
        view_row=torch.tensor([row for (row, _), _ in flat], dtype=torch.long),
        view_start=torch.tensor([start for (_, start), _ in flat], dtype=torch.long),
        history_len=torch.tensor([v.history_len for _, v in flat], dtype=torch.long),
        response_len=torch.tensor([v.response_len for _, v in flat], dtype=torch.long),
        n_history=max(n_history, *(v.history_len for _, v in flat)),
        n_response=max(n_response, *(v.response_len for _, v in flat)),
    )
