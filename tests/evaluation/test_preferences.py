"""Synthetic preference heuristics, preference-file and Taskmaster readers (no model needed)."""

from __future__ import annotations

import json
import random

import pytest

from cagsr.data.labelled import read_preference_file, render_history
from cagsr.data.schema import Dialogue, MathProblem, Utterance
from cagsr.data.taskmaster import read_taskmaster_rewards, render_api_call, render_api_result
from cagsr.errors import DataError
from cagsr.evaluation.reward_models.preferences import (
    dialogue_candidates,
    matching_steps,
    math_candidates,
    ngram_overlap,
    synthetic_preference_pairs,
)


def dialogue(i: int, domain: str = "bank") -> Dialogue:
    return Dialogue(
        id=f"d{i}",
        domain=domain,
        turns=[
            Utterance("user", f"Hello, I need help with my account number {i}."),
            Utterance("agent", f"Sure, could you tell me the PIN for account {i} please?"),
            Utterance("user", "It is 1234."),
            Utterance("agent", f"Thanks, account {i} now shows a balance of {100 + i} dollars."),
        ],
    )


def problem(i: int) -> MathProblem:
    return MathProblem(
        id=f"p{i}",
        question=f"Tom has {i} apples and buys {i + 1} more, then doubles them. How many?",
        steps=[
            f"Tom has {i} + {i + 1} = {2 * i + 1} apples.",
            f"Doubled: {2 * i + 1} * 2 = {4 * i + 2} apples.",
        ],
        answer=str(4 * i + 2),
    )


def test_ngram_overlap():
    assert ngram_overlap("the cat sat", "the cat sat") == pytest.approx(1.0)
    assert ngram_overlap("dogs bark loudly", "the cat sat") == 0.0
    shuffled = ngram_overlap("sat cat the", "the cat sat")
    truncated = ngram_overlap("the cat", "the cat sat")
    assert 0.0 < shuffled < 1.0 and 0.0 < truncated < 1.0
    assert ngram_overlap("", "the cat") == 0.0
    assert ngram_overlap("Hi", "hi") == pytest.approx(1.0)  # one word: no bigrams on either side


def test_matching_steps_counts_in_order():
    ref = ["A = 1 + 1 = 2.", "B = 2 * 3 = 6.", "C = 6 - 1 = 5."]
    assert matching_steps(ref, ref) == 3
    assert matching_steps(list(reversed(ref)), ref) == 1
    assert matching_steps(["a = 1 + 1 = 2", "nonsense"], ref) == 1
    assert matching_steps([], ref) == 0


def test_candidates_rank_recorded_and_reference_first():
    rng = random.Random(0)
    d = dialogue(1)
    texts = dialogue_candidates(d, 3, [dialogue(2), dialogue(3, "hotel")], rng)
    assert texts[0] == d.turns[3].text and len(texts) == len(set(texts)) >= 4
    scores = [ngram_overlap(t, texts[0]) for t in texts]
    assert scores[0] == max(scores)
    p = problem(1)
    cands = math_candidates(p, [problem(2)], rng)
    assert cands[0] == (p.steps, p.answer)
    counts = [matching_steps(steps, p.steps) for steps, _ in cands]
    assert counts[0] == len(p.steps) and min(counts) == 0


def test_synthetic_pairs_prefer_higher_scores_and_are_deterministic():
    records = [dialogue(i, "bank" if i % 2 else "hotel") for i in range(6)]
    pairs = synthetic_preference_pairs(records, seed=0)
    assert pairs and pairs == synthetic_preference_pairs(records, seed=0)
    for pair in pairs:
        d = {r.id: r for r in records}[pair.group]
        turn = next(i for i in d.agent_turn_indices() if render_history(d.turns[:i], 4, 1000) == pair.context)
        recorded = d.turns[turn].text
        assert ngram_overlap(pair.chosen, recorded) >= ngram_overlap(pair.rejected, recorded) + 0.1
    math_pairs = synthetic_preference_pairs([problem(i) for i in range(5)], seed=1)
    for pair in math_pairs:
        p = {f"p{i}": problem(i) for i in range(5)}[pair.group]
        chosen = matching_steps(pair.chosen.splitlines(), p.steps)
        rejected = matching_steps(pair.rejected.splitlines(), p.steps)
        assert chosen > rejected
        assert pair.context == p.question


def test_read_preference_file(tmp_path):
    path = tmp_path / "prefs.jsonl"
    rows = [
        {"context": "user: hi", "chosen": "Hello! How can I help?", "rejected": "Bananas."},
        {"context": [{"role": "user", "text": "refund please"}], "chosen": "Sure.", "rejected": "No."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    pairs = read_preference_file(path)
    assert [p.chosen for p in pairs] == ["Hello! How can I help?", "Sure."]
    assert pairs[1].context == "user: refund please"
    assert pairs[0].group != pairs[1].group
    path.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"context": "x", "chosen": "y"}) + "\n")
    with pytest.raises(DataError, match=r"prefs.jsonl:2: missing field 'rejected'"):
        read_preference_file(path)
    path.write_text("{not json\n")
    with pytest.raises(DataError, match=r"prefs.jsonl:1: invalid JSON"):
        read_preference_file(path)


def test_render_api_call_and_result():
    assert (
        render_api_call({"get_menu_items": {"query": "espresso"}}) == "[api] get_menu_items(query=espresso)"
    )
    result = render_api_result({"get_menu_items": {"items": [{"name": "Espresso", "menu_item_id": "e-1"}]}})
    assert result == "[api result] get_menu_items: items=[Espresso]"
    assert "<id>" in render_api_result({"add_order_item": {"order_id": "9caad54304794fb894ac5a4ec598b4ef"}})


def test_taskmaster_reader_real_rows(shared_data):
    rows = read_taskmaster_rewards(shared_data / "taskmaster4_reward.jsonl", limit=50)
    assert len(rows) == 50 and {r.label for r in rows} <= {0.0, 1.0}
    assert rows[0].response == "[api] get_menu_items(query=espresso)"
    assert rows[0].context.endswith("user: can i get an espresso please")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"context": [], "generation": {"role": "agent", "text": "hi"}, "reward": 0.5},
            "'reward' must be 0 or 1",
        ),
        ({"context": [], "generation": {"role": "user", "text": "hi"}, "reward": 1}, "must be an agent turn"),
        (
            {
                "context": [{"role": "robot", "text": "x"}],
                "generation": {"role": "agent", "text": "hi"},
                "reward": 1,
            },
            "context entry 1 has role 'robot'",
        ),
        (
            {"context": [{"role": "api"}], "generation": {"role": "agent", "text": "hi"}, "reward": 1},
            "needs a 'response' object",
        ),
        ({"generation": {"role": "agent", "text": "hi"}, "reward": 1}, "missing field 'context'"),
    ],
)
def test_taskmaster_reader_errors_name_file_and_line(tmp_path, row, message):
    path = tmp_path / "tm.jsonl"
    good = {
        "context": [{"role": "user", "text": "hi"}],
        "generation": {"role": "agent", "text": "hello"},
        "reward": 1,
    }
    path.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=rf"tm.jsonl:2: .*{message}"):
        read_taskmaster_rewards(path)
