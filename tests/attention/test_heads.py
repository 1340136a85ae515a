"""Per-head statistics of the capture: hand-computed values, and a slow loop over eager attention.

Shapes: B batch, N history tokens, S response tokens, L layers, H heads, K keys, F selected heads.
"""

from __future__ import annotations

import math

import pytest
import torch

from cagsr.attention import SequenceView, TeacherForcedBatch, forward_with_capture, pack_sequences
from cagsr.attention.heads import (
    HeadRequest,
    all_heads,
    block_head_stats,
    format_heads,
    lookback_ratio,
    parse_heads,
)
from cagsr.errors import ConfigError

from .tiny_models import random_batch, tiny_model

TOL = 1e-5


def test_parse_and_format_heads():
    assert parse_heads(" 3.1, 29.0 ") == ((3, 1), (29, 0))
    assert parse_heads("") == ()
    assert format_heads(((3, 1), (29, 0))) == "3.1,29.0"
    for bad in ("3", "3.x", "3.1,3.1", "-1.2"):
        with pytest.raises(ConfigError):
            parse_heads(bad)


def test_block_head_stats_by_hand():
    # One query row, keys [h0, h1, h2(pad), y1, y2]; history columns 0..2, column 2 is padding.
    probs = torch.tensor([[[0.5, 0.2, 0.0, 0.1, 0.2],
                           [0.1, 0.1, 0.0, 0.7, 0.1]]])  # [M=1, F=2, K=5]
    columns = torch.tensor([[0, 1, 2]])
    history = torch.tensor([[True, True, False]])
    own = torch.tensor([[False, False, False, True, True]])
    stats, top = block_head_stats(probs, columns, history, torch.tensor([0]), own)
    assert torch.allclose(stats["history_mass"], torch.tensor([[0.7, 0.2]]))
    assert torch.allclose(stats["self_mass"], torch.tensor([[0.3, 0.8]]))
    assert torch.allclose(stats["first_mass"], torch.tensor([[0.5, 0.1]]))
    h0 = -(5 / 7 * math.log(5 / 7) + 2 / 7 * math.log(2 / 7))
    assert torch.allclose(stats["entropy"], torch.tensor([[h0, math.log(2)]]), atol=1e-6)
    assert top.tolist() == [[0, -1]]  # head 1's strongest key is its own token y1


def test_lookback_ratio_by_hand():
    hist = torch.tensor([[[0.6], [0.5], [0.2]]])  # [R=1, S=3, F=1]
    own = torch.tensor([[[0.0], [0.4], [0.8]]])
    got = lookback_ratio(hist, own, torch.tensor([4]), torch.arange(3))
    # step 0: no own tokens -> 1; step 1: (0.5/4) / (0.5/4 + 0.4/1); step 2: (0.2/4) / (0.2/4 + 0.8/2)
    want = torch.tensor([1.0, 0.125 / 0.525, 0.05 / 0.45])
    assert torch.allclose(got[0, :, 0], want)


def reference_stats(model, batch: TeacherForcedBatch):
    """Slow loop over eager attention of the whole teacher-forced sequence: {name: [B, S, L*H]}, top [B, S, L*H]."""
    ids = torch.cat([batch.history_ids, batch.response_ids], 1)
    mask = torch.cat([batch.history_mask, batch.response_mask], 1).long()
    with torch.no_grad():
        att = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions  # L x [B, H, T, T]
    b, n = batch.history_ids.shape
    s = batch.response_ids.shape[1]
    heads = all_heads(len(att), att[0].shape[1])
    out = {k: torch.zeros(b, s, len(heads)) for k in ("history_mass", "self_mass", "entropy", "first_mass")}
    top = torch.full((b, s, len(heads)), -1)
    for i in range(b):
        real = [j for j in range(n) if batch.history_mask[i, j]]
        for step in range(s):
            q = n - 1 + step
            for f, (layer, head) in enumerate(heads):
                row = att[layer][i, head, q].double()
                p = [float(row[j]) for j in real]
                mass = sum(p)
                out["history_mass"][i, step, f] = mass
                out["self_mass"][i, step, f] = float(row[n : q + 1].sum())
                out["entropy"][i, step, f] = -sum(x / mass * math.log(x / mass) for x in p if x > 0)
                out["first_mass"][i, step, f] = p[0]
                k = int(row[: q + 1].argmax())
                top[i, step, f] = k if k in real else -1
    return out, top


@pytest.mark.parametrize("lengths", [[9, 5], [9, 9]], ids=["padded", "unpadded"])
def test_head_stats_match_eager_attention(lengths):
    model = tiny_model("llama")  # GQA: 4 query heads, 2 kv heads, 2 layers
    batch = random_batch("llama", lengths, n=9, s=5)
    heads = all_heads(2, 4)
    got = forward_with_capture(model, batch, heads=HeadRequest(features=heads)).head_stats
    want, top = reference_stats(model, batch)
    assert got.heads == heads
    for name, value in want.items():
        assert (getattr(got, name) - value).abs().max() <= TOL, name
    assert torch.equal(got.top, top)
    assert got.n_history.tolist() == lengths


def test_selected_heads_and_extra_abar_match_reference():
    model = tiny_model("llama")
    batch = random_batch("llama", [9, 6], n=9, s=4)
    chosen = ((0, 1), (1, 3), (1, 0))
    cap = forward_with_capture(model, batch, heads=HeadRequest(abar=chosen, features=chosen[:1],
                                                              extra_abar={"last": all_heads(2, 4)[4:]}))
    ids = torch.cat([batch.history_ids, batch.response_ids], 1)
    mask = torch.cat([batch.history_mask, batch.response_mask], 1).long()
    att = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
    rows = torch.stack([att[layer][:, head, 8:12, :9] for layer, head in chosen]).mean(0)  # [B, S, N]
    rows = rows * batch.history_mask[:, None]
    assert (cap.abar - rows / rows.sum(-1, keepdim=True)).abs().max() <= TOL
    plain = forward_with_capture(model, batch, last_layers=1)
    extra_abar, extra_mass = cap.extra_abar["last"]
    assert torch.allclose(extra_abar, plain.abar, atol=1e-6) and torch.allclose(extra_mass, plain.history_mass)
    assert cap.head_stats.history_mass.shape == (2, 4, 1)


def test_packed_layout_gives_the_padded_numbers():
    model = tiny_model("llama")
    # One dialogue: turn 1 = (h, r1); turn 2 = (h + r1 + u2, r2); both views in one packed sequence.
    h, r1, u2, r2 = [5, 9, 17, 33], [40, 41, 42], [50, 51], [60, 61]
    seq = h + r1 + u2 + r2
    views = [[SequenceView(history_len=4, response_len=3), SequenceView(history_len=9, response_len=2)]]
    packed = pack_sequences([seq], views, row_width=16, pad_id=0)
    heads = all_heads(2, 4)
    got = forward_with_capture(model, packed, heads=HeadRequest(features=heads)).head_stats
    for view, (hist, resp) in enumerate([(h, r1), (h + r1 + u2, r2)]):
        single = TeacherForcedBatch(torch.tensor([hist]), torch.ones(1, len(hist), dtype=torch.bool),
                                    torch.tensor([resp]), torch.ones(1, len(resp), dtype=torch.bool))
        want = forward_with_capture(model, single, heads=HeadRequest(features=heads)).head_stats
        k = len(resp)
        assert torch.allclose(got.lookback()[view, :k], want.lookback()[0], atol=TOL)
        assert torch.allclose(got.entropy[view, :k], want.entropy[0], atol=TOL)
        # Columns of the view layout are left-padded: compare history columns counted from the right.
        shift = packed.n_history - len(hist)
        assert torch.equal(torch.where(got.top[view, :k] >= 0, got.top[view, :k] - shift, -1), want.top[0])


def test_heads_outside_the_model_are_one_line_errors():
    model = tiny_model("llama")
    batch = random_batch("llama", [5], n=5, s=2)
    with pytest.raises(ConfigError, match="outside the model"):
        forward_with_capture(model, batch, heads=HeadRequest(features=((2, 0),)))
    with pytest.raises(ConfigError, match="outside the model"):
        forward_with_capture(model, batch, heads=HeadRequest(abar=((1, 4),)))
