"""The positive control's reward (`reward.kind quality`): the evaluation's own quality of each turn."""

import pytest

from cagsr.data.schema import Dialogue, MathProblem, Utterance
from cagsr.errors import ConfigError
from cagsr.evaluation.reward_models.task_rewards import reference_quality
from cagsr.reward.registry import get_reward
from cagsr.rollout.episode import Episode

U = Utterance
STAR = Dialogue(id="d", turns=[U("user", "I need a table for two tonight."), U("agent", "What time would you like?"),
                               U("user", "Seven please."), U("agent", "Booked for two at seven.")])


def _episode(replies: list[str]) -> Episode:
    """A scripted-user rollout of STAR with these agent replies (the recorded user turns replayed)."""
    users = [u for u in STAR.turns if u.role == "user"]
    said = []
    for i, reply in enumerate(replies):
        said += [users[i], U("agent", reply)]
    return Episode(record=STAR, kind="dialogue", utterances=said, turn_texts=list(replies))


def test_a_dialogue_reply_equal_to_the_recorded_one_scores_one_and_others_less():
    fn = get_reward("quality")
    gold = fn([_episode(["What time would you like?", "Booked for two at seven."])], None)
    assert gold.shape == (1, 2) and gold[0].tolist() == pytest.approx([1.0, 1.0], abs=1e-4)
    # the second reply is judged against the second recorded agent turn, not the first
    swapped = fn([_episode(["Booked for two at seven.", "What time would you like?"])], None)
    assert (swapped < 0.9).all()
    some = fn([_episode(["What time?", "Sorry, we are closed."]), _episode(["Hello"])], None)
    assert some.shape == (2, 2) and 0.0 < some[0, 0] < 1.0 and some[1, 1] == 0.0  # padded turn


def test_a_reference_solution_scores_the_mean_of_step_correctness_and_accuracy():
    problem = MathProblem(id="m", question="Ann has 3 apples and buys 4. How many?",
                          steps=["Ann has 3 + 4 = 7 apples."], answer="7")
    right = Episode(record=problem, kind="math", utterances=[U("user", problem.question),
                                                             U("agent", "Ann has 3 + 4 = 7 apples.\n#### 7")],
                    turn_texts=["Ann has 3 + 4 = 7 apples.", "#### 7"], final_turn=1)
    wrong = Episode(record=problem, kind="math", utterances=[U("user", problem.question),
                                                             U("agent", "She has 3 * 4 = 12 apples.\n#### 12")],
                    turn_texts=["She has 3 * 4 = 12 apples.", "#### 12"], final_turn=1)
    scores = reference_quality([right, wrong], None)
    # the one turn holding a step matches (0.5 * 1 / 1), the answer turn is right (0.5): in all the mean of
    # the evaluation's step correctness (1) and accuracy (1)
    assert scores[0].tolist() == pytest.approx([0.5, 0.5])
    assert scores[1].tolist() == pytest.approx([0.0, 0.0])


def test_quality_needs_recorded_data():
    with pytest.raises(ConfigError, match="reward quality"):
        reference_quality([Episode(record=None, kind="dialogue", turn_texts=["hi"])], None)
