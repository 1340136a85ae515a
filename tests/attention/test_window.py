"""Window and prune memory controls agree with the full capture.

Shapes: B batch, N history tokens, S response tokens, W window.
"""

from __future__ import annotations

import pytest
import torch

from cagsr.attention import TeacherForcedBatch, forward_with_capture
from cagsr.attention import capture as capture_mod
from cagsr.attention.window import WindowReducer, prune_columns, window_index

from .tiny_models import KINDS, random_batch, tiny_model


def test_window_index_right_aligned():
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0], [1, 0, 1, 0, 1, 1]], dtype=torch.bool)
    assert window_index(mask, 3).tolist() == [[3, 4, 5], [-1, 0, 1], [2, 4, 5]]


def _check_window(full: torch.Tensor, win: torch.Tensor, index: torch.Tensor, mask: torch.Tensor) -> None:
    """full [B, S, N], win [B, S, W+1], index [B, W]: columns equal, summary = mass on older tokens."""
    for b in range(full.shape[0]):
        cols = index[b][index[b] >= 0]
        assert torch.allclose(win[b, :, 1:][:, index[b] >= 0], full[b][:, cols], atol=1e-6)
        assert bool((win[b, :, 1:][:, index[b] < 0] == 0).all())
        older = mask[b].clone()
        older[cols] = False
        assert torch.allclose(win[b, :, 0], full[b][:, older].sum(-1), atol=1e-6)
        assert torch.allclose(win[b].sum(-1), full[b].sum(-1), atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("window", [4, 16])
def test_window_matches_full(kind, window):
    model = tiny_model(kind, "sdpa")
    batch = random_batch(kind, [14, 9, 5], n=14, s=6)
    full = forward_with_capture(model, batch, last_layers=2)
    got = forward_with_capture(model, batch, last_layers=2, window=window)
    assert got.abar.shape == (3, 6, window + 1) and got.kept_index.shape == (3, window)
    assert torch.equal(got.kept_index, window_index(batch.history_mask, window))
    _check_window(full.abar, got.abar, got.kept_index, batch.history_mask)
    assert torch.allclose(got.history_mass, full.history_mass, atol=1e-6)
    assert torch.equal(got.logits, full.logits)


def test_window_long_history_is_blocked(monkeypatch):
    """N = 4096: rows are folded a few at a time and only [B, S, W+1] is kept."""
    model = tiny_model("llama", "sdpa")
    b, n, s, w, heads = 2, 4096, 6, 64, 4
    batch = random_batch("llama", [4096, 3000], n=n, s=s)
    # A block of scores is kept no larger than the [B, S, W+1] result, so here it is one query row.
    assert capture_mod.block_rows(b, heads, s, n + s, b * s * (w + 1)) == 1
    seen: list[tuple[int, ...]] = []
    add = WindowReducer.add
    monkeypatch.setattr(WindowReducer, "add", lambda self, rows, steps, probs: (seen.append(tuple(probs.shape)), add(self, rows, steps, probs)))  # fmt: skip
    with torch.no_grad():
        got = forward_with_capture(model, batch, window=w)
    assert got.abar.shape == (b, s, w + 1)
    assert seen == [(b, n)] * s  # one layer, one query row per sequence at a time: never [B, H, S, N]
    assert got.kept_index[0].tolist() == list(range(n - w, n))
    monkeypatch.undo()
    with torch.no_grad():
        full = forward_with_capture(model, batch)
    _check_window(full.abar, got.abar, got.kept_index, batch.history_mask)


def _salient(mask: torch.Tensor, seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(mask.shape, generator=g) < 0.3) & mask


@pytest.mark.parametrize("kind", KINDS)
def test_prune_keeps_coverage(kind):
    model = tiny_model(kind, "sdpa")
    batch = random_batch(kind, [40, 33, 12], n=40, s=5)
    keep = _salient(batch.history_mask)
    full = forward_with_capture(model, batch)
    threshold = 0.02  # high enough that random attention leaves columns below it
    got = forward_with_capture(model, batch, prune_above=20, prune_keep=keep, prune_threshold=threshold)
    idx = got.kept_index
    assert idx is not None and got.abar.shape == (3, 5, idx.shape[1])
    for b in range(3):
        cols = idx[b][idx[b] >= 0]
        assert bool((cols[1:] > cols[:-1]).all())  # history order
        assert torch.equal(got.abar[b][:, : len(cols)], full.abar[b][:, cols])
        assert bool((got.abar[b][:, len(cols) :] == 0).all())
        real = batch.history_mask[b].nonzero().squeeze(1)
        dropped = real[~torch.isin(real, cols)]
        if b == 2:  # 12 history tokens <= prune_above: untouched
            assert torch.equal(cols, real)
            continue
        assert len(dropped) > 0
        assert not keep[b][dropped].any() and bool((full.abar[b][:, dropped].amax(0) < threshold).all())
    # Coverage over the kept salient tokens equals the unpruned coverage.
    kept_keep = keep.gather(1, idx.clamp(min=0)) & (idx >= 0)
    cov_pruned = (got.abar * kept_keep[:, None, :]).sum(-1).mean(-1)
    cov_full = (full.abar * keep[:, None, :]).sum(-1).mean(-1)
    assert torch.allclose(cov_pruned, cov_full, atol=1e-6)


def test_prune_with_window_keeps_summary():
    model = tiny_model("llama", "sdpa")
    batch = random_batch("llama", [40, 30], n=40, s=4)
    keep = _salient(batch.history_mask)
    win = forward_with_capture(model, batch, window=16)
    got = forward_with_capture(model, batch, window=16, prune_above=20, prune_keep=keep, prune_threshold=0.02)
    assert torch.equal(got.abar[..., 0], win.abar[..., 0])
    for b in range(2):
        cols = got.kept_index[b][got.kept_index[b] >= 0]
        pos = {int(p): c for c, p in enumerate(win.kept_index[b].tolist())}
        expect = win.abar[b][:, [1 + pos[int(p)] for p in cols]]
        assert torch.equal(got.abar[b][:, 1 : 1 + len(cols)], expect)
        window_cols = win.kept_index[b]
        assert bool(torch.isin(window_cols[keep[b][window_cols]], cols).all())  # salient tokens stay


def test_prune_below_limit_is_a_no_op():
    model = tiny_model("gpt2", "sdpa")
    batch = random_batch("gpt2", [10, 6], n=10, s=3)
    got = forward_with_capture(model, batch, prune_above=64, prune_keep=torch.zeros(2, 10, dtype=torch.bool))
    assert got.kept_index is None and got.abar.shape == (2, 3, 10)


def test_prune_columns_padding():
    abar = torch.tensor([[[0.5, 0.001, 0.499, 0.0]]])  # [1, 1, 4]
    index = torch.tensor([[0, 1, 2, -1]])
    keep = torch.tensor([[False, False, False, False]])
    out, new_index = prune_columns(abar, index, keep, torch.tensor([3]), prune_above=2, threshold=0.01)
    assert new_index.tolist() == [[0, 2]] and torch.equal(out, torch.tensor([[[0.5, 0.499]]]))


def test_prune_needs_keep_mask():
    model = tiny_model("llama", "sdpa")
    batch: TeacherForcedBatch = random_batch("llama", [8], n=8, s=2)
    with pytest.raises(ValueError, match="prune_keep"):
        forward_with_capture(model, batch, prune_above=4)
