"""One teacher-forced pass, for either batch layout, read at the response rows.

Shapes: B padded rows (TeacherForcedBatch) or R views (PackedBatch), S response tokens,
V vocabulary, D hidden size, P packed rows, L packed columns.

Both layouts return logits [., S, V] and the LM head's input [., S, D] at the rows whose outputs
predict y_1..y_S: only those rows go through the LM head, so [P, L, V] is never built (V is 49,152
for SmolLM2). A packed batch is passed without an attention mask, so transformers builds the
block-diagonal causal mask from the restarting `position_ids`.
"""

from __future__ import annotations

import inspect

from torch import Tensor, nn

from cagsr.attention.batch import TeacherForcedBatch, is_encoder_decoder, model_inputs, response_rows
from cagsr.attention.packed import PackedBatch
from cagsr.utils.modules import unwrap_peft

Batch = TeacherForcedBatch | PackedBatch


def _accepts(model: nn.Module, name: str) -> bool:
    return name in inspect.signature(unwrap_peft(model).forward).parameters


def _run_padded(model: nn.Module, batch: TeacherForcedBatch) -> tuple[Tensor, Tensor]:
    rows = response_rows(model, batch)
    kwargs = model_inputs(model, batch)
    if not is_encoder_decoder(model) and _accepts(model, "logits_to_keep"):
        kwargs["logits_to_keep"] = rows  # the head runs on S rows, never [B, T, V]
    grabbed: list[Tensor] = []
    handle = model.get_output_embeddings().register_forward_pre_hook(lambda _m, args: grabbed.append(args[0]))
    try:
        out = model(**kwargs, use_cache=False)
    finally:
        handle.remove()
    logits, hidden = out.logits, grabbed[-1]
    if logits.shape[1] != rows.numel():
        logits = logits[:, rows]
    if hidden.shape[1] != rows.numel():
        hidden = hidden[:, rows]
    return logits, hidden


def _run_packed(model: nn.Module, batch: PackedBatch) -> tuple[Tensor, Tensor]:
    index, _ = batch.response_positions()  # [R, S]
    picked: list[Tensor] = []

    def pick(_module, args):
        # Replace the head's input [P, L, D] by the R x S rows that predict a response token, so the
        # model's own head (and any logit scaling after it) runs on those rows only.
        rows = args[0].flatten(0, 1)[index.flatten()].unsqueeze(0)  # [1, R*S, D]
        picked.append(rows)
        return (rows, *args[1:])

    handle = model.get_output_embeddings().register_forward_pre_hook(pick)
    try:
        out = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False)
    finally:
        handle.remove()
    r, s = index.shape
    return out.logits.view(r, s, -1), picked[-1].view(r, s, -1)


def forward_no_capture(model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor]:
    """The pass with the model's current attention (SDPA by default): logits [., S, V] predicting
    y_1..y_S and the LM head's input [., S, D] at the same rows."""
    if isinstance(batch, PackedBatch):
        if is_encoder_decoder(model):
            raise ValueError("packed batches are for decoder-only models (seq2seq encoder input changes per turn)")
        return _run_packed(model, batch)
    return _run_padded(model, batch)


def view_masks(batch: Batch) -> tuple[Tensor, Tensor]:
    """history_mask [., N] and response_mask [., S] of the batch's view layout."""
    if isinstance(batch, PackedBatch):
        return batch.history_mask(), batch.response_mask()
    return batch.history_mask, batch.response_mask
