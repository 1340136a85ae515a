import torch

from cagsr.config import from_dict
from cagsr.data.generate import generate_dialogues, generate_math
from cagsr.formatting.examples import supervised_pairs
from cagsr.models import load_model
from cagsr.models.forward import masked_token_nll, response_logits
from cagsr.sft.config import SFTJob
from cagsr.sft.trainer import collate, run_sft


def test_loss_masks_cover_agent_turns_only(tiny_llama):
    pairs = supervised_pairs(generate_dialogues(2), tiny_llama)
    for pair in pairs:
        assert pair.response_ids[-1] == tiny_llama.eos_token_id
        assert pair.history.token_role[-1] == "template"  # the generation prompt, then the response
        assert tiny_llama.tokenizer.decode(pair.response_ids[:-1]) == pair.response_text
    math_pairs = supervised_pairs(generate_math(2), tiny_llama)
    assert all(p.response_text.endswith(f"Answer: {r.answer}") for p, r in zip(math_pairs, generate_math(2), strict=True))


def test_steps_lower_loss_on_a_fixed_batch_and_change_parameters():
    for name in ("tiny-llama", "tiny-t5"):
        loaded = load_model(name)
        batch = collate(loaded, supervised_pairs(generate_math(4), loaded))
        before = [p.detach().clone() for p in loaded.model.parameters()]
        opt = torch.optim.AdamW(loaded.model.parameters(), lr=3e-3)
        losses = []
        for _ in range(8):
            loss = masked_token_nll(response_logits(loaded.model, batch), batch.response_ids, batch.response_mask)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < losses[0] - 0.5, (name, losses)
        assert any(not torch.equal(a, b) for a, b in zip(before, loaded.model.parameters(), strict=True))


def sft_job(tmp_path, name, seed=0):
    return from_dict(SFTJob, {"model": {"name": "tiny-llama"}, "data": {"path": "generated:math", "num_generated": 20},
                              "sft": {"max_steps": 4, "batch_size": 4, "lr": 1e-3, "eval_every": 2, "samples": 1},
                              "run": {"output_dir": str(tmp_path / name), "progress": False, "seed": seed}})


def test_run_writes_loadable_checkpoint_and_is_reproducible(tmp_path):
    a = run_sft(sft_job(tmp_path, "a"))
    b = run_sft(sft_job(tmp_path, "b"))
    assert a.val_losses == b.val_losses and a.val_losses[-1][1] < a.val_losses[0][1]
    assert (a.run_dir / "config.yaml").exists() and any((a.run_dir / "tensorboard").iterdir())
    reloaded = load_model(str(a.run_dir))
    original = load_model(str(a.run_dir / "model"))
    assert torch.equal(next(reloaded.model.parameters()), next(original.model.parameters()))
    assert a.samples and "generated" in a.samples[0]
