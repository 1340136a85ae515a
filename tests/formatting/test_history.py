import pytest

from cagsr.data.schema import Utterance
from cagsr.formatting import collate_pairs, format_history, format_response

TURNS = [Utterance("user", "My order AB-123 is late."), Utterance("agent", "Sorry! Which city?"),
         Utterance("user", "Lisbon, please hurry.")]


@pytest.mark.parametrize("model", ["tiny_llama", "tiny_t5"])
def test_provenance_offsets_and_turns(model, request):
    loaded = request.getfixturevalue(model)
    fh = format_history(loaded.tokenizer, TURNS, loaded.is_encoder_decoder)
    assert len(fh.input_ids) == len(fh.offsets) == len(fh.token_turn) == len(fh.token_role)
    for index, utterance in enumerate(TURNS):
        pieces = [fh.text[s:e] for (s, e), t in zip(fh.offsets, fh.token_turn, strict=True) if t == index]
        assert "".join(pieces).strip() == utterance.text
        roles = {r for r, t in zip(fh.token_role, fh.token_turn, strict=True) if t == index}
        assert roles == {utterance.role}
    start, end = fh.turn_spans[2]
    assert fh.text[start:end] == TURNS[2].text
    # the tokens are what the tokenizer makes of the rendered text
    assert loaded.tokenizer(fh.text, add_special_tokens=False)["input_ids"] == fh.input_ids


def test_decoder_only_uses_the_chat_template(tiny_llama):
    fh = format_history(tiny_llama.tokenizer, TURNS, False)
    assert fh.text.endswith("<|im_start|>assistant\n") and "<|im_start|>user\nMy order" in fh.text
    assert -1 in fh.token_turn  # template tokens have no turn


def test_seq2seq_uses_speaker_tags(tiny_t5):
    fh = format_history(tiny_t5.tokenizer, TURNS, True)
    assert fh.text.splitlines()[0] == "User: My order AB-123 is late." and fh.text.endswith("Agent:")


def test_truncation_drops_oldest_turns_with_one_warning(tiny_llama):
    long = [Utterance("user", "word " * 200), Utterance("agent", "ok"), Utterance("user", "short question?")]
    with pytest.warns(UserWarning, match="dropped the oldest 1"):
        fh = format_history(tiny_llama.tokenizer, long, False, max_tokens=60)
    assert len(fh.input_ids) <= 60 and fh.first_kept_turn == 1 and set(fh.token_turn) <= {-1, 1, 2}


def test_collate_pads_histories_left_for_decoders_right_for_seq2seq():
    b = collate_pairs([[1, 2, 3], [4]], [[5], [6, 7]], pad_id=0, is_encoder_decoder=False)
    assert b.history_ids.tolist() == [[1, 2, 3], [0, 0, 4]] and b.response_ids.tolist() == [[5, 0], [6, 7]]
    b = collate_pairs([[1, 2, 3], [4]], [[5], [6, 7]], pad_id=0, is_encoder_decoder=True)
    assert b.history_ids.tolist() == [[1, 2, 3], [4, 0, 0]]
    assert b.history_mask.tolist() == [[True, True, True], [True, False, False]]


def test_response_ends_with_end_token(tiny_llama):
    ids = format_response(tiny_llama.tokenizer, "Hello there", tiny_llama.eos_token_id)
    assert ids[-1] == tiny_llama.eos_token_id and tiny_llama.tokenizer.decode(ids[:-1]) == "Hello there"
