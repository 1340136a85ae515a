"""Variable-length (history, response) pairs -> one padded TeacherForcedBatch.

Decoder-only histories are left-padded (the last history token of every row sits at column
N - 1, where generation continues); seq2seq encoder inputs are right-padded. Responses are
always right-padded.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cagsr.attention.batch import TeacherForcedBatch


def pad_rows(rows: list[list[int]], pad: int, left: bool) -> tuple[Tensor, Tensor]:
    """list of B id lists -> ([B, max_len] long, [B, max_len] bool mask)."""
    width = max((len(r) for r in rows), default=0)
    ids = torch.full((len(rows), max(width, 1)), pad, dtype=torch.long)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    for i, row in enumerate(rows):
        if not row:
            continue
        cols = slice(ids.shape[1] - len(row), None) if left else slice(0, len(row))
        ids[i, cols] = torch.tensor(row, dtype=torch.long)
        mask[i, cols] = True
    return ids, mask


def collate_pairs(
    histories: list[list[int]], responses: list[list[int]], pad_id: int, is_encoder_decoder: bool
) -> TeacherForcedBatch:
    """B histories and B responses (token id lists) -> TeacherForcedBatch [B, N] / [B, S]."""
    history_ids, history_mask = pad_rows(histories, pad_id, left=not is_encoder_decoder)
    response_ids, response_mask = pad_rows(responses, pad_id, left=False)
    return TeacherForcedBatch(history_ids, history_mask, response_ids, response_mask)
