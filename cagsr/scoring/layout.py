"""Rows -> forward passes: which tokens each teacher-forced pass reads, and how they are laid out.

    for part in plan_passes(rows, layout="packed", token_budget=4096, pad_id=0, encoder_decoder=False):
        out = forward_with_capture(model, part.batch)   # views come back in the order of part.rows

Decoder-only models read padding-free PackedBatches (attention/packed.py). With layout="packed"
consecutive rows of an episode that continue each other (RowBatch.continues_previous) share one
sequence: the last row's history + response holds every earlier turn, so a dialogue of T turns costs
one pass over its tokens instead of T passes over growing prefixes. With layout="turns" every row is
a sequence of its own (still without padding). Seq2seq models, and layout="padded", read padded
TeacherForcedBatches of whole rows. Every pass stays within `token_budget` tokens unless one sequence alone is longer.

Shapes: R rows, r rows of one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from cagsr.attention.batch import TeacherForcedBatch
from cagsr.attention.packed import PackedBatch, SequenceView, pack_sequences
from cagsr.scoring.rows import RowBatch


@dataclass(frozen=True, kw_only=True)
class Pass:
    """One forward pass: the rows it scores (in the order its outputs come back) and its batch."""

    rows: Tensor
    """[r] long: indices into the RowBatch that was planned."""
    batch: TeacherForcedBatch | PackedBatch
    """What the model reads."""
    sequences: int
    """Token sequences it reads."""


@dataclass
class LayoutStats:
    """Token accounting of a phase's passes (logged under batch/)."""

    passes: int = 0
    """Forward passes."""
    sequences: int = 0
    """Sequences read (one per dialogue when packed, one per turn otherwise)."""
    tokens: int = 0
    """Real tokens read."""
    positions: int = 0
    """Positions computed (real tokens + padding)."""
    causal_pairs: int = 0
    """(query, key) pairs of causal attention within the sequences: sum of l (l + 1) / 2 over lengths l."""
    head_rows: int = 0
    """Rows that go through the LM head (one per response token)."""

    def add(self, plan: list[Pass]) -> LayoutStats:
        for part in plan:
            self.passes += 1
            self.sequences += part.sequences
            if isinstance(part.batch, PackedBatch):
                lengths = part.batch.sequence_lengths()
                self.tokens += sum(lengths)
                self.positions += part.batch.input_ids.numel()
                self.head_rows += int(part.batch.response_len.sum())
            else:
                b = part.batch
                lengths = (b.history_mask.sum(-1) + b.response_mask.sum(-1)).tolist()
                self.tokens += sum(lengths)
                self.positions += b.history_ids.numel() + b.response_ids.numel()
                self.head_rows += int(b.response_mask.sum())
            self.causal_pairs += sum(n * (n + 1) // 2 for n in lengths)
        return self

    def metrics(self, phase: str) -> dict[str, float]:
        return {
            f"batch/{phase}_tokens": float(self.tokens),
            f"batch/{phase}_padding_share": 1.0 - self.tokens / max(1, self.positions),
            f"batch/{phase}_passes": float(self.passes),
            f"batch/{phase}_sequences": float(self.sequences),
            f"batch/{phase}_pairs": float(self.causal_pairs),
            f"batch/{phase}_head_rows": float(self.head_rows),
        }


def sequence_groups(rows: RowBatch, layout: str) -> list[list[int]]:
    """Row indices grouped into sequences: runs of rows that continue each other (packed), or one each."""
    groups: list[list[int]] = []
    for r, follows in enumerate(rows.continues_previous.tolist()):
        if layout == "packed" and follows and groups:
            groups[-1].append(r)
        else:
            groups.append([r])
    return groups


def unpacked_turns(rows: RowBatch) -> int:
    """Rows after the first of their episode that could not join their predecessor's sequence."""
    first = torch.ones_like(rows.continues_previous)
    first[1:] = rows.row_episode[1:] != rows.row_episode[:-1]
    return int((~first & ~rows.continues_previous).sum())


def _sequence(rows: RowBatch, group: list[int]) -> tuple[list[int], list[SequenceView]]:
    last = group[-1]
    ids = [*rows.history_ids[last][rows.history_mask[last]].tolist(),
           *rows.response_ids[last][rows.response_mask[last]].tolist()]
    views = [SequenceView(history_len=int(rows.history_mask[r].sum()), response_len=int(rows.response_mask[r].sum()))
             for r in group]
    return ids, views


def _packed_passes(rows: RowBatch, layout: str, token_budget: int, pad_id: int) -> list[Pass]:
    plan, current, used = [], [], 0
    sequences = [(group, *_sequence(rows, group)) for group in sequence_groups(rows, layout)]

    def close() -> None:
        ids = [s for _, s, _ in current]
        batch = pack_sequences(ids, [v for _, _, v in current], row_width=max(len(s) for s in ids), pad_id=pad_id,
                               n_history=rows.history_ids.shape[1], n_response=rows.response_ids.shape[1])
        index = torch.tensor([r for g, _, _ in current for r in g], dtype=torch.long)
        plan.append(Pass(rows=index, batch=batch, sequences=len(current)))

    for entry in sequences:
        if current and used + len(entry[1]) > token_budget:
            close()
            current, used = [], 0
        current.append(entry)
        used += len(entry[1])
    if current:
        close()
    return plan


def plan_passes(rows: RowBatch, *, layout: str, token_budget: int, pad_id: int, encoder_decoder: bool,
                index: Tensor | None = None) -> list[Pass]:
    """Every row of `rows` (or of its rows `index` [r], in that order) in exactly one pass, in row order;
    Pass.rows index into `rows` either way."""
    if index is not None:
        passes = plan_passes(rows.select(index), layout=layout, token_budget=token_budget, pad_id=pad_id,
                             encoder_decoder=encoder_decoder)
        return [Pass(rows=index[p.rows], batch=p.batch, sequences=p.sequences) for p in passes]
    if rows.num_rows == 0:
        return []
    if not encoder_decoder and layout != "padded":
        return _packed_passes(rows, layout, token_budget, pad_id)
    per_pass = max(1, token_budget // (rows.history_ids.shape[1] + rows.response_ids.shape[1]))
    return [Pass(rows=chunk, batch=rows.select(chunk).batch, sequences=chunk.numel())
            for chunk in torch.arange(rows.num_rows).split(per_pass)]
