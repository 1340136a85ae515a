import pytest
import torch

from cagsr.errors import ModelError
from cagsr.models import load_model


@pytest.mark.parametrize("name, enc_dec", [("tiny-llama", False), ("tiny-t5", True)])
def test_tiny_presets_are_small_deterministic_and_offline(name, enc_dec):
    a, b = load_model(name), load_model(name)
    assert a.is_encoder_decoder is enc_dec
    n_params = sum(p.numel() for p in a.model.parameters())
    assert 1e6 < n_params < 8e6
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert a.tokenizer.decode([a.eos_token_id]) == "<|im_end|>"


def test_saved_model_folder_loads_back(tmp_path, tiny_t5):
    tiny_t5.model.save_pretrained(tmp_path / "m")
    tiny_t5.tokenizer.save_pretrained(tmp_path / "m")
    again = load_model(str(tmp_path / "m"))
    assert again.is_encoder_decoder
    assert torch.equal(next(again.model.parameters()), next(tiny_t5.model.parameters()))


def test_unknown_model_is_a_one_line_error():
    with pytest.raises(ModelError, match="no-such-model: not a preset"):
        load_model("no-such-model")


@pytest.mark.slow
def test_smollm2_loads_offline_and_answers_sensibly():
    from cagsr.data.schema import Utterance
    from cagsr.formatting import format_history
    from cagsr.rollout.engines.base import SamplingConfig
    from cagsr.rollout.engines.hf import HFEngine

    loaded = load_model("smollm2-135m")
    assert sum(p.numel() for p in loaded.model.parameters()) > 100e6
    prompt = format_history(loaded.tokenizer, [Utterance("user", "What is the capital of France?")], False)
    (completion,), = HFEngine(loaded).generate([prompt.input_ids], SamplingConfig(do_sample=False, max_new_tokens=20))
    assert "Paris" in loaded.tokenizer.decode(completion.token_ids)
