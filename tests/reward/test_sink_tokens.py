"""reward.history_tokens = content: sink columns left out of coverage and focus, the rest renormalised.

Hand-computed numbers on a padded batch, the window's summary bucket, the per-model-kind defaults, and
both model kinds end to end (tiny-llama self-attention, tiny-t5 cross-attention)."""

from __future__ import annotations

import math

import pytest
import torch

from cagsr.attention.capture import CaptureResult, forward_with_capture
from cagsr.data.schema import Dialogue, Utterance
from cagsr.errors import ConfigError
from cagsr.reward.attention_reward import sink_columns, sink_mask, turn_components
from cagsr.reward.combine import attention_reward, attention_weights
from cagsr.reward.config import RewardConfig, parse_sinks, resolve_reward
from cagsr.rollout.recorded import recorded_episodes
from cagsr.salience.masks import Salience
from cagsr.scoring.rows import build_rows

NAN = math.nan


def _h(*p: float) -> float:
    """Entropy in nats of the distribution p, by hand."""
    return -sum(x * math.log(x) for x in p if x > 0)


def padded_batch(history_mass: float = 0.9):
    """Two rows, left-padded histories (decoder-only layout), right-padded responses.

    Row 0: 4 history tokens [T, a, b, c] (T a template + special token), 2 response tokens.
    Row 1: 3 real history tokens [pad, T, a, b], 1 response token (+ 1 padding). Padded cells hold NaN:
    nothing may leak from them.
    """
    abar = torch.tensor([
        [[0.5, 0.1, 0.2, 0.2], [0.6, 0.2, 0.1, 0.1]],
        [[NAN, 0.7, 0.1, 0.2], [NAN, NAN, NAN, NAN]],
    ])
    history_mask = torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1]], dtype=torch.bool)
    response_mask = torch.tensor([[1, 1], [1, 0]], dtype=torch.bool)
    template = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=torch.bool)
    capture = CaptureResult(logits=torch.zeros(2, 2, 3), hidden=torch.zeros(2, 2, 2), abar=abar,
                            history_mass=torch.full((2, 2), history_mass) * response_mask, kept_index=None)
    inputs = dict(history_ids=torch.tensor([[7, 1, 2, 3], [0, 7, 1, 2]]), history_mask=history_mask,
                  response_ids=torch.tensor([[4, 5], [4, 0]]), response_mask=response_mask,
                  salient_mask=torch.tensor([[0, 1, 0, 0], [0, 0, 1, 0]], dtype=torch.bool),
                  current_mask=history_mask, template_mask=template, special_mask=template,
                  token_turn=torch.tensor([[0, 0], [0, -1]]), is_cot=torch.tensor([False, False]))
    return capture, inputs


def test_content_renormalisation_matches_hand_computation():
    capture, inputs = padded_batch()
    cfg = RewardConfig(history_tokens="content", sink_tokens="template", tau0=-math.inf, coverage_weight=1.0,
                       focus_weight=0.1, repetition_weight=0.5)
    out = turn_components(capture, **inputs, cfg=cfg)
    # Row 0 without column 0: [0.1, 0.2, 0.2] / 0.5 and [0.2, 0.1, 0.1] / 0.4. Row 1: [0.1, 0.2] / 0.3.
    cov = [(0.2 + 0.5) / 2, 1 / 3]
    ent = [(_h(0.2, 0.4, 0.4) + _h(0.5, 0.25, 0.25)) / 2, _h(1 / 3, 2 / 3)]
    torch.testing.assert_close(out["coverage"][:, 0], torch.tensor(cov), atol=1e-6, rtol=0)
    torch.testing.assert_close(out["entropy"][:, 0], torch.tensor(ent), atol=1e-6, rtol=0)
    torch.testing.assert_close(out["focus"][:, 0], -torch.tensor(ent), atol=1e-6, rtol=0)
    torch.testing.assert_close(out["sink_mass"][:, 0], torch.tensor([0.55, 0.7]), atol=1e-6, rtol=0)
    reward = attention_reward(out, attention_weights(cfg))
    torch.testing.assert_close(reward[:, 0], torch.tensor(cov) - 0.1 * torch.tensor(ent), atol=1e-6, rtol=0)


def test_all_history_tokens_is_the_papers_reward_on_the_same_batch():
    capture, inputs = padded_batch()
    cfg = RewardConfig(history_tokens="all", sink_tokens="template", tau0=-math.inf)
    out = turn_components(capture, **inputs, cfg=cfg)
    ent = [(_h(0.5, 0.1, 0.2, 0.2) + _h(0.6, 0.2, 0.1, 0.1)) / 2, _h(0.7, 0.1, 0.2)]
    torch.testing.assert_close(out["coverage"][:, 0], torch.tensor([0.15, 0.1]), atol=1e-6, rtol=0)
    torch.testing.assert_close(out["entropy"][:, 0], torch.tensor(ent), atol=1e-6, rtol=0)
    # The diagnostic is the same in both versions; repetition never depends on the attention columns.
    content = turn_components(capture, **inputs, cfg=RewardConfig(history_tokens="content", sink_tokens="template"))
    torch.testing.assert_close(out["sink_mass"], content["sink_mass"])
    torch.testing.assert_close(out["repetition"], content["repetition"])


def test_first_sink_is_the_first_real_column_on_either_padding_side():
    history = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    none = torch.zeros_like(history)
    first = sink_mask(history, none, none, frozenset({"first"}))
    assert first.tolist() == [[False, False, True, False], [True, False, False, False], [False] * 4]
    template = torch.tensor([[1, 0, 0, 1], [0, 0, 0, 1], [1, 0, 0, 0]], dtype=torch.bool)
    both = sink_mask(history, template, none, frozenset({"first", "template"}))
    assert both.tolist() == [[False, False, True, True], [True, False, False, False], [False] * 4]  # padding never


def test_window_summary_bucket_counts_as_a_sink():
    sinks = torch.tensor([[0, 0, 0, 1, 0]], dtype=torch.bool)  # N = 5, window W = 2 keeps positions 3, 4
    kept = torch.tensor([[3, 4]])
    columns = torch.tensor([[True, True, True]])  # bucket (older tokens exist) + 2 kept
    assert sink_columns(sinks, columns, kept, 3).tolist() == [[True, True, False]]
    assert sink_columns(sinks, torch.tensor([[False, True, True]]), kept, 3).tolist() == [[False, True, False]]


def test_auto_resolves_per_model_kind_and_bad_sinks_fail():
    decoder, seq2seq = resolve_reward(RewardConfig(), False), resolve_reward(RewardConfig(), True)
    assert decoder.history_tokens == seq2seq.history_tokens == "all"  # the paper's reward stays the default
    assert decoder.sink_tokens == "template|special|first"
    assert seq2seq.sink_tokens == "template|special"
    explicit = resolve_reward(RewardConfig(history_tokens="all", sink_tokens="first"), False)
    assert (explicit.history_tokens, explicit.sink_tokens) == ("all", "first")
    assert parse_sinks("special | first") == {"special", "first"}
    with pytest.raises(ConfigError, match="sink_tokens"):
        RewardConfig(sink_tokens="template|bos")


def test_unresolved_auto_reads_the_model_kind_from_the_capture():
    content = RewardConfig(history_tokens="content")  # sink_tokens auto
    for mass, sinks in ((1.0, "template|special"), (0.9, "template|special|first")):
        capture, inputs = padded_batch(history_mass=mass)  # mass 1 on every row: a full softmax, seq2seq
        inputs |= {"template_mask": torch.zeros(2, 4, dtype=torch.bool), "special_mask": torch.zeros(2, 4, dtype=torch.bool)}
        auto = turn_components(capture, **inputs, cfg=content)
        explicit = turn_components(capture, **inputs, cfg=RewardConfig(history_tokens="content", sink_tokens=sinks))
        torch.testing.assert_close(auto["entropy"], explicit["entropy"])
        # Only the decoder-only default leaves out the first column (here the only sink).
        assert bool((auto["sink_mass"][:, 0] > 0).all()) == (mass < 1)


def _dialogues() -> list[Dialogue]:
    return [Dialogue("d0", [Utterance("user", "My order 4417 from Lisbon never arrived."),
                            Utterance("agent", "Sorry about order 4417. Let me check the Lisbon depot."),
                            Utterance("user", "Thanks, it was due on Monday."),
                            Utterance("agent", "It ships Monday evening.")]),
            Dialogue("d1", [Utterance("user", "Can I change my flight to Oslo?"),
                            Utterance("agent", "Yes, the Oslo flight can be changed for a fee.")])]


@pytest.mark.parametrize("model_name", ["tiny_llama", "tiny_t5"])
def test_content_rows_are_distributions_over_content_columns_for_both_model_kinds(model_name, request):
    torch.set_num_threads(1)
    loaded = request.getfixturevalue(model_name)
    dialogues = _dialogues()
    salience = Salience.fit([u.text for d in dialogues for u in d.turns], "idf|entities", 0.5)
    rows = build_rows(recorded_episodes(dialogues, loaded, 256), loaded, salience)  # 3 rows, padded
    with torch.no_grad():
        cap = forward_with_capture(loaded.model, rows.batch, 1)
    inputs = rows.reward_inputs()
    out = {v: turn_components(cap, **inputs, cfg=RewardConfig(history_tokens=v, sink_tokens="template|special"))
           for v in ("all", "content")}
    content = rows.history_mask & ~(rows.template_mask | rows.special_mask)
    n_content = content.sum(-1).float()
    mask = out["content"]["turn_mask"]
    row_entropy = (out["content"]["entropy"] * mask).sum(-1)
    assert (row_entropy <= n_content.log() + 1e-5).all()
    assert ((out["all"]["sink_mass"] > 0) & (out["all"]["sink_mass"] < 1))[mask].all()
    # Leaving columns out and renormalising can only raise the share on the (content) salient tokens.
    assert (out["content"]["coverage"] >= out["all"]["coverage"] - 1e-6)[mask].all()
    torch.testing.assert_close(out["content"]["repetition"], out["all"]["repetition"])
    resolved = resolve_reward(RewardConfig(history_tokens="content"), loaded.is_encoder_decoder)
    auto = turn_components(cap, **inputs, cfg=RewardConfig(history_tokens="content"))  # read from the capture
    same = turn_components(cap, **inputs, cfg=resolved)
    for key in ("coverage", "focus", "repetition"):
        torch.testing.assert_close(auto[key], same[key])
