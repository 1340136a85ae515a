"""A system prompt reaches the model input (chat template's system slot, or a seq2seq prefix) and is in no
reward, salience, current-turn or loss mask: it is context, never a turn."""

import pytest

from cagsr.data.schema import Dialogue, Utterance
from cagsr.formatting import format_history
from cagsr.formatting.examples import supervised_pairs
from cagsr.rollout.recorded import recorded_episodes
from cagsr.rollout.simulators import opening
from cagsr.salience.masks import Salience
from cagsr.scoring.rows import build_rows

SYSTEM = "You are Zephyrine, the Lumenbank support agent."
DIALOGUE = Dialogue(id="d", turns=[
    Utterance("system", SYSTEM), Utterance("user", "My card AB-1234 was stolen."),
    Utterance("agent", "I blocked card AB-1234."), Utterance("user", "Thanks, Zephyrine."),
    Utterance("agent", "Glad to help."),
])


def system_tokens(fh):
    return [i for i, r in enumerate(fh.token_role) if r == "system"]


def test_decoder_puts_it_in_the_chat_templates_system_slot(tiny_llama):
    fh = format_history(tiny_llama.tokenizer, DIALOGUE.turns[:2], False)
    assert fh.text.startswith(f"<|im_start|>system\n{SYSTEM}<|im_end|>")
    assert "named SmolLM" not in fh.text  # the template's default system prompt gave way to ours
    index = system_tokens(fh)
    assert "".join(fh.text[slice(*fh.offsets[i])] for i in index).strip() == SYSTEM
    assert {fh.token_turn[i] for i in index} == {-1}  # not a turn
    assert fh.turn_spans[0] == (fh.text.index("My card"), fh.text.index("My card") + len(DIALOGUE.turns[1].text))


def test_seq2seq_gets_it_as_a_prefix(tiny_t5):
    fh = format_history(tiny_t5.tokenizer, DIALOGUE.turns[:2], True)
    assert fh.text.splitlines()[0] == f"System: {SYSTEM}" and fh.text.endswith("Agent:")
    assert system_tokens(fh) and {fh.token_turn[i] for i in system_tokens(fh)} == {-1}


def test_truncation_keeps_the_system_prompt(tiny_llama):
    turns = [Utterance("system", SYSTEM), Utterance("user", "word " * 200), Utterance("agent", "ok"),
             Utterance("user", "short question?")]
    with pytest.warns(UserWarning, match="dropped the oldest 1"):
        fh = format_history(tiny_llama.tokenizer, turns, False, max_tokens=60)
    assert SYSTEM in fh.text and fh.first_kept_turn == 2 and set(fh.token_turn) <= {-1, 2, 3}


def test_the_policys_first_prompt_carries_it(tiny_llama):
    first = opening(DIALOGUE)
    assert first[0].role == "system"
    assert SYSTEM in format_history(tiny_llama.tokenizer, first, False).text


@pytest.mark.parametrize("model", ["tiny_llama", "tiny_t5"])
def test_no_reward_or_salience_mask_takes_system_tokens(model, request):
    loaded = request.getfixturevalue(model)
    episodes = recorded_episodes([DIALOGUE], loaded)
    # Zephyrine is salient wherever it is content (a keyword, in the user's turn too): only the system
    # prompt's copy must stay out of the mask.
    salience = Salience.fit([u.text for u in DIALOGUE.turns], "keywords", 0.7, keywords=["Zephyrine", "Lumenbank"])
    rows = build_rows(episodes, loaded, salience)
    checked = 0
    for r, action in enumerate(a for ep in episodes for a in ep.actions):
        system = [role == "system" for role in action.history.token_role]
        real = rows.batch.history_mask[r].bool()
        for name in ("salient_mask", "current_mask", "template_mask"):
            values = getattr(rows, name)[r][real].tolist()
            assert not any(v and s for v, s in zip(values, system, strict=True)), name
        salient = rows.salient_mask[r][real].tolist()
        user_copy = [s for s, t, role in zip(salient, action.history.token_turn, action.history.token_role,
                                             strict=True) if role == "user"]
        checked += any(system) and any(user_copy)
    assert checked, "the keyword must be salient in a user turn, or the test proves nothing"


def test_no_loss_target_is_the_system_prompt(tiny_llama):
    pairs = supervised_pairs([DIALOGUE], tiny_llama)
    assert [p.turn_index for p in pairs] == [2, 4]
    assert all(SYSTEM not in p.response_text for p in pairs)
    assert all(SYSTEM in p.history.text for p in pairs)
    decoded = [tiny_llama.tokenizer.decode(p.response_ids) for p in pairs]
    assert all("Zephyrine, the" not in text for text in decoded)
