"""The teacher-forced batch: (history, response) pairs laid out for one forward pass.

Shapes: B batch, N history tokens, S response tokens, T = N + S.

Decoder-only models see cat(history, response): the history is left-padded so every row's last
history token sits at column N - 1, and the response is right-padded. The logits that predict
y_1..y_S come from rows N - 1 .. N + S - 2. Encoder-decoder models see the history in the encoder
(right padding) and shift_right(response) in the decoder, so decoder row s predicts y_s.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class TeacherForcedBatch:
    """History and response token ids with their masks (True on real tokens)."""

    history_ids: Tensor  # [B, N] left-padded (decoder-only) / right-padded (seq2seq encoder input)
    history_mask: Tensor  # [B, N] bool
    response_ids: Tensor  # [B, S] right-padded y_1..y_S
    response_mask: Tensor  # [B, S] bool

    def __post_init__(self) -> None:
        if self.history_ids.shape != self.history_mask.shape:
            raise ValueError(
                f"history ids {tuple(self.history_ids.shape)} vs mask {tuple(self.history_mask.shape)}"
            )
        if self.response_ids.shape != self.response_mask.shape:
            raise ValueError(
                f"response ids {tuple(self.response_ids.shape)} vs mask {tuple(self.response_mask.shape)}"
            )
        self.history_mask = self.history_mask.bool()
        self.response_mask = self.response_mask.bool()

    @property
    def n_history(self) -> int:
        return self.history_ids.shape[1]

    @property
    def n_response(self) -> int:
        return self.response_ids.shape[1]

    def to(self, device: torch.device | str) -> TeacherForcedBatch:
        return TeacherForcedBatch(*(t.to(device) for t in self._tensors()))

    def _tensors(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.history_ids, self.history_mask, self.response_ids, self.response_mask


def is_encoder_decoder(model) -> bool:
    return bool(getattr(model.config, "is_encoder_decoder", False))


def position_ids_from_mask(mask: Tensor) -> Tensor:
    """[B, T] bool -> [B, T] long positions that skip padding, as `generate` computes them."""
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(~mask, 0)


def decoder_start_token_id(model) -> int:
    for cfg in (getattr(model, "generation_config", None), model.config):
        start = getattr(cfg, "decoder_start_token_id", None) if cfg is not None else None
        if start is not None:
            return int(start)
    raise ValueError("seq2seq model has no decoder_start_token_id in its config or generation config")


def shift_right(response_ids: Tensor, start_id: int) -> Tensor:
    """[B, S] -> [B, S] decoder inputs [start, y_1..y_{S-1}]."""
    shifted = response_ids.new_full(response_ids.shape, start_id)
    shifted[:, 1:] = response_ids[:, :-1]
    return shifted


def response_rows(model, batch: TeacherForcedBatch) -> Tensor:
    """[S] long: the rows of the model's sequence whose outputs predict y_1..y_S."""
    n, s = batch.n_history, batch.n_response
    device = batch.response_ids.device
    if is_encoder_decoder(model):
        return torch.arange(s, device=device)
    return torch.arange(n - 1, n + s - 1, device=device)


def model_inputs(model, batch: TeacherForcedBatch) -> dict[str, Tensor]:
    """Keyword arguments for `model(**kwargs)` for either model kind (no cache, full sequence)."""
    if is_encoder_decoder(model):
        # Decoder input s is y_{s-1}; it is real iff y_{s-1} is (the start token always is).
        dec_mask = torch.cat([batch.response_mask[:, :1].new_ones(batch.response_mask.shape[0], 1),
                              batch.response_mask[:, :-1]], dim=1)  # fmt: skip
        return {
            "input_ids": batch.history_ids,
            "attention_mask": batch.history_mask.long(),
            "decoder_input_ids": shift_right(batch.response_ids, decoder_start_token_id(model)),
            "decoder_attention_mask": dec_mask.long(),
        }
    mask = torch.cat([batch.history_mask, batch.response_mask], dim=1)
    return {
        "input_ids": torch.cat([batch.history_ids, batch.response_ids], dim=1),
        "attention_mask": mask.long(),
        "position_ids": position_ids_from_mask(mask),
    }
