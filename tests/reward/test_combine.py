"""The trained reward: the attention reward alone, one other reward, or a weighted sum with every part reported."""

import pytest
import torch

from cagsr.data.schema import MathProblem, Utterance
from cagsr.errors import CagsrError, ConfigError
from cagsr.reward.combine import build_turn_reward, parse_part
from cagsr.reward.config import RewardConfig
from cagsr.reward.registry import REWARDS, get_reward
from cagsr.rollout.episode import Episode

USER_REWARDS = '''
import torch
from cagsr.reward.registry import turn_tensor

def politeness(episodes, job):
    return turn_tensor(episodes, lambda ep, t: float("please" in ep.turn_texts[t].lower()))

def coverage(episodes, job):          # a name the trainer already logs
    return turn_tensor(episodes, lambda ep, t: 1.0)

def wrong_shape(episodes, job):
    return torch.zeros(len(episodes) + 1, 2)

def as_list(episodes, job):
    return [[0.5] * max(ep.num_turns for ep in episodes) for _ in episodes]
'''


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "my_rewards.py"
    path.write_text(USER_REWARDS)
    return path


def episodes():
    return [Episode(record=None, kind="dialogue", turn_texts=["Please hold.", "Done, two words"]),
            Episode(record=None, kind="dialogue", turn_texts=["ok"])]


# Components of the two episodes' turns: with the default weights (1, 0.1, 0.5) their attention reward is
# C + 0.1 F - 0.5 P = [[0.1, 0.2], [0.3, 0.0]] (the second episode's second turn is padding).
COMPONENTS = {"coverage": torch.tensor([[0.2, 0.2], [0.3, 9.0]]), "focus": torch.tensor([[-1.0, 0.0], [0.0, 9.0]]),
              "repetition": torch.tensor([[0.0, 0.0], [0.0, 9.0]]),
              "turn_mask": torch.tensor([[True, True], [True, False]])}
ATTENTION = torch.tensor([[0.1, 0.2], [0.3, 0.0]])


def run(reward, comps=COMPONENTS):
    out = reward(episodes(), comps, None)
    return out.total, out.parts


def test_attention_alone_is_the_attention_reward_with_no_extra_parts():
    out = build_turn_reward(RewardConfig())(episodes(), COMPONENTS, None)
    torch.testing.assert_close(out.total, ATTENTION)
    assert out.parts == {} and torch.equal(out.total, out.attention)


def test_the_stage_weighs_the_components_with_the_configured_weights():
    out = build_turn_reward(RewardConfig(coverage_weight=2.0, focus_weight=0.5, repetition_weight=4.0))(episodes(), COMPONENTS, None)
    # 2 C + 0.5 F - 4 P; the padded turn stays 0 whatever its components hold.
    torch.testing.assert_close(out.attention, torch.tensor([[-0.1, 0.4], [0.6, 0.0]]))


def test_one_user_reward_by_file_path(user_file):
    reward = build_turn_reward(RewardConfig(kind=f"{user_file}:politeness"))
    total, parts = run(reward)
    assert torch.equal(total, torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    assert list(parts) == ["politeness"] and torch.equal(parts["politeness"], total)


def test_weighted_parts_sum_and_are_each_reported_unweighted(user_file):
    cfg = RewardConfig(parts=["attention", f"0.5*{user_file}:politeness", "-0.1*length"])
    total, parts = run(build_turn_reward(cfg))
    words = torch.tensor([[2.0, 3.0], [1.0, 0.0]])
    polite = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert list(parts) == ["attention", "politeness", "length"]
    torch.testing.assert_close(parts["attention"], ATTENTION)
    assert torch.equal(parts["length"], words)
    assert torch.allclose(total, ATTENTION + 0.5 * polite - 0.1 * words)


def test_part_names_never_clash_with_logged_metrics_or_each_other(user_file):
    cfg = RewardConfig(parts=[f"{user_file}:coverage", "length", "2*length"])
    names = [p.name for p in build_turn_reward(cfg).parts]
    assert names == ["coverage_part", "length", "length_2"]


def test_a_list_result_is_accepted_and_a_wrong_shape_is_one_line(user_file):
    _, parts = run(build_turn_reward(RewardConfig(kind=f"{user_file}:as_list")))
    assert torch.equal(parts["as_list"], torch.tensor([[0.5, 0.5], [0.5, 0.0]]))  # padded turn: 0
    reward = build_turn_reward(RewardConfig(kind=f"{user_file}:wrong_shape"))
    with pytest.raises(ConfigError, match=r"returned shape \[3, 2\], expected \[E, T\] = \[2, 2\]"):
        run(reward)


@pytest.mark.parametrize("cfg, message", [
    (dict(kind="length", parts=["attention"]), "set either reward.kind ('length') or reward.parts, not both"),
    (dict(parts=["attention", "x*length"]), "expected WEIGHT*NAME with a number as WEIGHT"),
    (dict(parts=["inf*length"]), "the weight must be finite"),
    (dict(parts=["attention", "0.5*nope"]), "reward.parts: unknown reward 'nope'"),
    (dict(parts=["attention", "model"]), "reward.model_path: the model reward needs a saved reward model folder"),
    (dict(kind="missing_file.py:fn"), "reward.kind: missing_file.py:fn: no such file"),
])
def test_bad_configs_are_one_line_at_build_time(cfg, message):
    with pytest.raises(ConfigError) as info:
        build_turn_reward(RewardConfig(**cfg))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_parse_part():
    assert parse_part(" 2 * correctness ") == (2.0, "correctness")
    assert parse_part("pkg.mod:fn") == (1.0, "pkg.mod:fn")


def test_every_builtin_in_the_table_resolves():
    assert set(REWARDS) >= {"model", "correctness", "length"}
    for name in REWARDS:
        assert callable(get_reward(name))


def test_correctness_rewards_the_answer_turn_of_a_right_solution():
    def solution(text, answer):
        steps = text.split("|")
        return Episode(record=MathProblem(id="1", question="2+3?", steps=[], answer=answer), kind="math",
                       utterances=[Utterance("user", "2+3?"), Utterance("agent", "\n".join(steps))],
                       turn_texts=steps, final_turn=len(steps) - 1)

    fn = get_reward("correctness")
    right, wrong = solution("2 plus 3|#### 5", "5"), solution("2 plus 3|#### 6", "5")
    assert torch.equal(fn([right, wrong], None), torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ConfigError, match="needs math problems"):
        fn(episodes(), None)


def test_pass_signals_are_parts_and_kinds_read_from_the_scoring_pass():
    # Components whose attention reward is [1, 2] (coverage alone, weight 1), and two log-prob signals.
    tables = {"coverage": torch.tensor([[1.0, 2.0]]), "focus": torch.zeros(1, 2), "repetition": torch.zeros(1, 2),
              "turn_mask": torch.ones(1, 2, dtype=torch.bool),
              "self_certainty": torch.tensor([[4.0, 6.0]]), "logprob": torch.tensor([[-1.0, -3.0]])}
    combined = build_turn_reward(RewardConfig(parts=["attention", "0.5*self_certainty", "-2*logprob"]))
    turn = combined(episodes()[:1], tables, None)
    assert torch.equal(turn.total, torch.tensor([[1 + 2 + 2, 2 + 3 + 6.0]]))
    assert set(turn.parts) == {"attention", "self_certainty", "logprob"}
    alone = build_turn_reward(RewardConfig(kind="self_certainty"))
    assert not alone.attention_only
    assert torch.equal(alone(episodes()[:1], tables, None).total, tables["self_certainty"])
    with pytest.raises(CagsrError, match="the scoring pass gave no 'predictive_entropy' table"):
        build_turn_reward(RewardConfig(kind="predictive_entropy"))(episodes()[:1], tables, None)
    with pytest.raises(ConfigError, match="built-in: attention, logprob, predictive_entropy, self_certainty"):
        build_turn_reward(RewardConfig(kind="self_certainity"))


def test_random_is_seeded_per_text_and_uniform():
    fn = get_reward("random")
    eps = episodes()
    a = fn(eps, None)
    assert torch.equal(a, fn(list(eps), None)) and ((a >= 0) & (a < 1)).all()
    run = type("Job", (), {"run": type("Run", (), {"seed": 7})()})()
    assert not torch.equal(a, fn(eps, run))
