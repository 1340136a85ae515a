"""The lean engine: parity with transformers' generate, shared candidate caches, sessions, fused capture.

    .venv/bin/python -m pytest tests/rollout/test_engines_lean.py            # tiny models, seconds
    .venv/bin/python -m pytest -m slow tests/rollout/test_engines_lean.py    # + the real SmolLM2-135M

Shapes: B prompts, K candidates, N prompt tokens, S new tokens.
The tiny models use initializer_range 0.2 so their next-token distributions are peaked and depend on
the context: with the default 0.02 a random model repeats one token and parity tests prove little.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from scipy.stats import chi2_contingency
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
)

from cagsr.attention import forward_with_capture
from cagsr.formatting import collate_pairs
from cagsr.models.registry import LoadedModel
from cagsr.rollout.engines.base import SamplingConfig, make_engine
from cagsr.rollout.engines.hf import HFEngine
from cagsr.rollout.engines.lean import LeanEngine

VOCAB = 512
GREEDY = SamplingConfig(do_sample=False, max_new_tokens=12)


pytestmark = pytest.mark.usefixtures("one_thread")


class StubTokenizer:
    """The two ids the engines read; `eos` doubles as the chat end token."""

    unk_token_id = -1

    def __init__(self, pad: int, eos: int) -> None:
        self.pad_token_id, self.eos_token_id = pad, eos

    def convert_tokens_to_ids(self, token: str) -> int:
        return self.eos_token_id


def tiny(kind: str, eos: int = 2, seed: int = 0) -> LoadedModel:
    torch.manual_seed(seed)
    if kind == "t5":
        cfg = T5Config(vocab_size=VOCAB, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                       decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, initializer_factor=3.0)  # fmt: skip
        model = T5ForConditionalGeneration(cfg)
    elif kind == "llama":  # GQA: 4 query heads share 2 kv heads
        cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, initializer_range=0.2,
                          max_position_embeddings=4096, bos_token_id=1, eos_token_id=2, pad_token_id=0)  # fmt: skip
        model = LlamaForCausalLM(cfg)
    else:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4))
    return LoadedModel(model.eval(), StubTokenizer(pad=0, eos=eos), kind)


def prompts(lengths=(5, 17, 9, 30), seed: int = 1) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, VOCAB, (n,), generator=g).tolist() for n in lengths]


def greedy_ids(engine, batch, sampling=GREEDY) -> list[list[int]]:
    return [c[0].token_ids for c in engine.generate(batch, sampling)]


def ending_mid_way(kind: str) -> LoadedModel:
    """A tiny model whose end token is one it produces early for some prompts, so rows finish at different steps."""
    first = greedy_ids(HFEngine(tiny(kind)), prompts())
    return tiny(kind, eos=first[0][4])


@pytest.mark.parametrize(("kind", "onednn"), [("llama", False), ("llama", True), ("t5", None)])
def test_greedy_matches_transformers(kind, onednn):
    loaded = ending_mid_way(kind)
    expected = [c[0] for c in HFEngine(loaded).generate(prompts(), GREEDY)]
    got = [c[0] for c in LeanEngine(loaded, onednn=onednn).generate(prompts(), GREEDY)]
    assert [c.token_ids for c in got] == [c.token_ids for c in expected]
    assert [c.finished for c in got] == [c.finished for c in expected]
    assert any(c.finished for c in got) and not all(c.finished for c in got)


@pytest.mark.parametrize("kind", ["llama", "t5"])
def test_candidates_share_one_prefill(kind):
    loaded = tiny(kind)
    engine = LeanEngine(loaded)
    batch = prompts()
    one = greedy_ids(engine, batch)
    out = engine.generate(batch, SamplingConfig(do_sample=False, max_new_tokens=12), candidates=3)
    assert [[c.token_ids for c in cands] for cands in out] == [[ids] * 3 for ids in one]
    if kind == "llama":  # the prompt is prefilled once per prompt, not once per candidate
        assert engine.last_stats["prefill_columns"] == len(batch) * max(map(len, batch))
    sampled = engine.generate(batch, SamplingConfig(max_new_tokens=8), seed=0, candidates=4)
    assert all(len({tuple(c.token_ids) for c in cands}) > 1 for cands in sampled)
    for cands in sampled:
        for c in cands:
            assert len(c.sampler_logprobs) == len(c.token_ids) and max(c.sampler_logprobs) <= 0


@pytest.mark.parametrize("kind", ["llama", "t5"])
def test_seed_reproducible(kind):
    engine = LeanEngine(tiny(kind))
    sampling = SamplingConfig(max_new_tokens=8)

    def run(seed):
        return [[c.token_ids for c in x] for x in engine.generate(prompts(), sampling, seed=seed, candidates=2)]

    assert run(5) == run(5) and run(5) != run(6)


@pytest.mark.parametrize("kind", ["llama", "t5"])
def test_first_token_distribution_matches_transformers(kind):
    """Chi-square contingency test: 3,000 first tokens from each engine, same prompt and warpers."""
    loaded = tiny(kind)
    n, batch = 3000, prompts((12,))
    sampling = SamplingConfig(temperature=3.0, top_k=40, top_p=0.95, max_new_tokens=1)
    # A first token equal to padding is cut from the completion: count it as padding.
    ours = [(c.token_ids or [0])[0] for c in LeanEngine(loaded).generate(batch, sampling, seed=0, candidates=n)[0]]
    theirs = [(c.token_ids or [0])[0] for c in HFEngine(loaded).generate(batch, sampling, seed=0, candidates=n)[0]]
    a = torch.bincount(torch.tensor(ours), minlength=VOCAB)
    b = torch.bincount(torch.tensor(theirs), minlength=VOCAB)
    support = (a + b) >= 10
    table = torch.stack([torch.cat([a[support], a[~support].sum()[None]]),
                         torch.cat([b[support], b[~support].sum()[None]])])  # fmt: skip
    table = table[:, table.sum(0) > 0]
    assert table.shape[1] > 5, "the distribution should not be degenerate"
    assert chi2_contingency(table.numpy()).pvalue > 1e-3


def _three_turns(engine, sessions):
    """Greedy turns; each next prompt = previous prompt + the reply + a new user message."""
    batch, outputs, stats = prompts(), [], []
    for turn in range(3):
        out = (
            engine.generate(batch, GREEDY, sessions=sessions) if sessions else engine.generate(batch, GREEDY)
        )
        outputs.append([c[0].token_ids for c in out])
        stats.append(dict(getattr(engine, "last_stats", {})))
        user = prompts((3, 4, 5, 6), seed=10 + turn)
        batch = [p + c[0].token_ids + u for p, c, u in zip(batch, out, user, strict=True)]
    return outputs, stats


def test_session_extends_cache_across_turns():
    loaded = tiny("llama")
    reference, _ = _three_turns(HFEngine(loaded), None)
    engine = LeanEngine(loaded)
    got, stats = _three_turns(engine, ["a", "b", "c", "d"])
    assert got == reference
    assert stats[0]["reused_tokens"] == 0
    for s in stats[1:]:  # only the new user message (+ the reply's last token) is prefilled
        assert s["reused_tokens"] > 0.7 * s["prompt_tokens"]
        assert s["prefill_columns"] <= 4 * (6 + 1)
    engine.end_session("a")
    assert len(engine.sessions) == 3
    engine.sync_weights()  # cached K/V belong to the old weights
    assert len(engine.sessions) == 0


def test_session_falls_back_when_prompt_diverges():
    loaded = tiny("llama")
    engine = LeanEngine(loaded)
    batch = prompts()
    engine.generate(batch, GREEDY, sessions=[0, 1, 2, 3])
    changed = [[7, *p[1:]] for p in batch]  # first token differs: nothing reusable
    assert greedy_ids(engine, changed) == greedy_ids(HFEngine(loaded), changed)
    engine.generate(changed, GREEDY, sessions=[0, 1, 2, 3])
    assert engine.last_stats["reused_tokens"] == 0
    with pytest.raises(ValueError, match="sessions"):
        engine.generate(batch, GREEDY, sessions=[0, 0, 1, 2])


def test_onednn_weights_follow_in_place_updates():
    loaded = tiny("llama")
    engine = LeanEngine(loaded, onednn=True)
    before = greedy_ids(engine, prompts())
    with torch.no_grad():
        for p in loaded.model.parameters():
            p.mul_(1.3)
    after = greedy_ids(engine, prompts())
    assert after != before and after == greedy_ids(HFEngine(loaded), prompts())


@pytest.mark.parametrize(
    ("kind", "layers", "k"), [("llama", 1, 1), ("llama", 2, 3), ("t5", 1, 2), ("t5", 2, 1)]
)
def test_fused_capture_matches_teacher_forced(kind, layers, k):
    loaded = tiny(kind)
    batch = prompts()
    out = LeanEngine(loaded, capture_layers=layers).generate(
        batch, SamplingConfig(max_new_tokens=10), seed=0, candidates=k
    )
    rows = [(p, c) for p, cands in zip(batch, out, strict=True) for c in cands]
    # T5 built with initializer_factor 3 has large activations: incremental vs full-sequence rounding ~1e-5.
    tol = 1e-5 if kind == "llama" else 5e-5
    histories, responses = [p for p, _ in rows], [c.token_ids for _, c in rows]
    tf = collate_pairs(histories, responses, 0, loaded.is_encoder_decoder)
    ref = forward_with_capture(loaded.model, tf, last_layers=layers)
    for b, (prompt, c) in enumerate(rows):
        n, s = len(prompt), len(c.token_ids)
        cols = slice(0, n) if kind == "t5" else slice(tf.n_history - n, tf.n_history)
        assert c.abar.shape == (s, n)
        assert torch.allclose(c.abar, ref.abar[b, :s, cols], atol=tol)
        assert torch.allclose(c.history_mass, ref.history_mass[b, :s], atol=tol)


def test_supports_and_auto():
    assert LeanEngine.supports(tiny("llama")) and LeanEngine.supports(tiny("t5"))
    assert not LeanEngine.supports(tiny("gpt2"))
    if importlib.util.find_spec("vllm") is None:
        assert isinstance(make_engine("auto", tiny("llama")), LeanEngine)
    assert isinstance(make_engine("auto", tiny("t5")), LeanEngine)
    assert isinstance(make_engine("auto", tiny("gpt2")), HFEngine)


def test_lora_policy_matches_transformers():
    """LoRA-wrapped projections keep their adapter: they keep their own weights, the rest run with oneDNN's."""
    from peft import LoraConfig, get_peft_model

    loaded = tiny("llama")
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    loaded.model = get_peft_model(loaded.model, lora).eval()
    assert greedy_ids(LeanEngine(loaded, onednn=True), prompts()) == greedy_ids(HFEngine(loaded), prompts())


@pytest.mark.slow
def test_smollm2_greedy_and_capture():
    """Real chat prompts, the oneDNN default path: greedy equals transformers; capture equals the teacher-forced pass."""
    from cagsr.data.schema import Utterance
    from cagsr.formatting import format_history
    from cagsr.models.registry import load_model

    loaded = load_model("smollm2-135m")
    questions = ["What is the capital of France?", "Name three colours.", "How do bees make honey?",
                 "Give me a synonym for happy.", "What is 12 times 12?", "Tell me a fun fact about cats."]  # fmt: skip
    batch = [
        format_history(loaded.tokenizer, [Utterance(role="user", text=q)], False).input_ids for q in questions
    ]
    sampling = SamplingConfig(do_sample=False, max_new_tokens=24)
    out = LeanEngine(loaded, capture_layers=1).generate(batch, sampling)
    assert [c[0].token_ids for c in out] == greedy_ids(HFEngine(loaded), batch, sampling)
    responses = [c[0].token_ids for c in out]
    tf = collate_pairs(batch, responses, loaded.tokenizer.pad_token_id, False)
    ref = forward_with_capture(loaded.model, tf, last_layers=1)
    for b, (prompt, c) in enumerate(zip(batch, out, strict=True)):
        n, s = len(prompt), len(responses[b])
        assert torch.allclose(c[0].abar, ref.abar[b, :s, tf.n_history - n :], atol=1e-4)
