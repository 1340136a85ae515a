"""PackedBatch by hand: rows, restarting positions, where each view's response and history are."""

from __future__ import annotations

import torch

from cagsr.attention import PackedBatch, SequenceView, pack_sequences
from cagsr.attention.capture import packed_routes


def _two_dialogues() -> PackedBatch:
    # Sequence A (7 tokens) holds two turns: history 3 + response 2, then history 5 (= A's first 5) + response 2.
    # Sequence B (4 tokens) is one turn: history 2 + response 2. Width 8: A and B do not fit together.
    a, b = [10, 11, 12, 13, 14, 15, 16], [20, 21, 22, 23]
    views = [[SequenceView(history_len=3, response_len=2), SequenceView(history_len=5, response_len=2)],
             [SequenceView(history_len=2, response_len=2)]]
    return pack_sequences([a, b], views, row_width=8, pad_id=0)


def test_rows_positions_and_padding_tails():
    batch = _two_dialogues()
    assert batch.input_ids.tolist() == [[10, 11, 12, 13, 14, 15, 16], [20, 21, 22, 23, 0, 0, 0]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 0, 1, 2]]
    assert batch.view_row.tolist() == [0, 0, 1] and batch.view_start.tolist() == [0, 0, 0]
    assert (batch.n_history, batch.n_response) == (5, 2)
    assert batch.sequence_lengths() == [7, 4] and batch.real_tokens == 11


def test_short_sequences_share_a_row_with_restarting_positions():
    views = [[SequenceView(history_len=2, response_len=1)], [SequenceView(history_len=1, response_len=2)]]
    batch = pack_sequences([[1, 2, 3], [4, 5, 6]], views, row_width=8, pad_id=0)
    assert batch.input_ids.tolist() == [[1, 2, 3, 4, 5, 6]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 0, 1, 2]]
    assert batch.view_start.tolist() == [0, 3]
    flat, valid = batch.response_positions()
    # y of view 0 is token 3 (column 2), predicted at column 1; view 1's y are columns 4, 5, predicted at 3, 4.
    assert flat.tolist() == [[1, 1], [3, 4]] and valid.tolist() == [[True, False], [True, True]]


def test_response_positions_and_history_columns_of_the_view_layout():
    batch = _two_dialogues()
    flat, valid = batch.response_positions()
    width = batch.input_ids.shape[1]
    assert (flat // width).tolist() == [[0, 0], [0, 0], [1, 1]]
    assert (flat % width).tolist() == [[2, 3], [4, 5], [1, 2]]  # the query that predicts y_s
    assert valid.all()
    # Histories are left-padded to N = 5: view 0's 3 tokens sit in columns 2..4 -> key columns 0..2.
    assert batch.key_of_column().tolist() == [[-1, -1, 0, 1, 2], [0, 1, 2, 3, 4], [-1, -1, -1, 0, 1]]
    assert batch.history_mask().tolist() == [[False, False, True, True, True], [True] * 5,
                                             [False, False, False, True, True]]
    assert batch.response_mask().all()


def test_capture_routes_send_each_query_slot_to_its_view_and_step():
    routes = packed_routes(_two_dialogues())
    assert routes.positions.tolist() == [[2, 3, 4, 5], [1, 2, 0, 0]]
    assert routes.view.tolist() == [[0, 0, 1, 1], [2, 2, -1, -1]]
    assert routes.step.tolist() == [[0, 1, 0, 1], [0, 1, 0, 0]]


def test_to_keeps_every_field():
    batch = _two_dialogues().to("cpu")
    assert isinstance(batch.n_history, int) and torch.equal(batch.view_row, torch.tensor([0, 0, 1]))
