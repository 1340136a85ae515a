"""User simulators and engines by import path, built-ins through one table each; user salience sources."""

import random

import pytest

from cagsr.data.generate import generate_dialogues
from cagsr.data.schema import Utterance
from cagsr.errors import ConfigError
from cagsr.formatting.history import format_history
from cagsr.rollout.config import RolloutConfig
from cagsr.rollout.engines.base import ENGINES, SamplingConfig, available_engines, make_engine
from cagsr.rollout.runner import rollout
from cagsr.rollout.simulators import SIMULATORS, make_simulator
from cagsr.salience.masks import Salience

PLUGINS = '''
from cagsr.rollout.engines.hf import HFEngine

class EchoUser:
    """Declares only seed: user_model is not passed to it."""
    def __init__(self, seed=0):
        self.seed = seed
    def next_user_turns(self, episodes):
        return [f"echo {self.seed}: {ep.utterances[-1].text[:20]}" for ep in episodes]

class NeedsSecret:
    def __init__(self, secret):
        pass
    def next_user_turns(self, episodes):
        return []

def no_method(seed=0):
    return object()

class CountingEngine(HFEngine):
    name = "counting"
    calls = 0
    def generate(self, prompts, sampling, seed=None, sessions=None):
        CountingEngine.calls += 1
        return super().generate(prompts, sampling, seed, sessions)

def numbers(text):
    import re
    return [m.span() for m in re.finditer(r"[0-9]+", text)]

def out_of_range(text):
    return [(0, len(text) + 5)]

def not_spans(text):
    return 42

def no_args():
    pass

def two_args(text, extra):
    return []
'''


@pytest.fixture
def plugins(tmp_path):
    path = tmp_path / "my_plugins.py"
    path.write_text(PLUGINS)
    return path


def test_builtin_tables_resolve():
    assert set(SIMULATORS) == {"scripted", "rules", "model"} and set(ENGINES) == {"hf", "lean", "vllm"}
    assert available_engines() == ["hf", "lean", "vllm"]  # vllm's module imports; vllm itself only when it starts
    for name in ("scripted", "rules"):
        assert callable(make_simulator(name, seed=0, user_model=None).next_user_turns)


def test_user_simulator_and_engine_by_file_path_in_a_rollout(plugins, tiny_llama, one_thread):
    sim = make_simulator(f"{plugins}:EchoUser", seed=7, user_model=tiny_llama)
    engine = make_engine(f"{plugins}:CountingEngine", tiny_llama)
    cfg = RolloutConfig(engine="hf", turns=2, max_context=256, sampling=SamplingConfig(max_new_tokens=4))
    episodes = rollout(generate_dialogues(2), tiny_llama, engine, sim, cfg, random.Random(0))
    users = [u.text for u in episodes[0].utterances if u.role == "user"]
    assert len(users) == 2 and users[1].startswith("echo 7: ")
    assert type(engine).calls == 2  # one call per turn


@pytest.mark.parametrize("name, message", [
    ("nope", "rollout.simulator: unknown simulator 'nope' (built-in: scripted, rules, model;"),
    ("{p}:NeedsSecret", "has the signature (secret), expected Factory(seed=..., user_model=..., ...)"),
    ("{p}:no_method", "made a object without a next_user_turns(episodes) method"),
    ("{p}:Missing", "has no attribute 'Missing'"),
])
def test_bad_simulators_are_one_line(plugins, name, message):
    with pytest.raises(ConfigError) as info:
        make_simulator(name.format(p=plugins), seed=0, user_model=None)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_engine_names_are_one_line(plugins, tiny_llama):
    with pytest.raises(ConfigError, match="rollout.engine: unknown engine 'nope' \\(built-in: auto, hf, lean, vllm;"):
        make_engine("nope", tiny_llama)
    with pytest.raises(ConfigError, match="expected Engine\\(loaded: LoadedModel\\) -> Engine"):
        make_engine(f"{plugins}:no_args", tiny_llama)


def test_user_salience_source_marks_its_spans(plugins, tiny_llama):
    history = format_history(tiny_llama.tokenizer, [Utterance("user", "Table for 4 at 19 please")], False)
    mask = Salience.fit([], f"keywords|{plugins}:numbers", 0.7).token_mask(history)
    marked = [history.text[a:b].strip() for (a, b), m in zip(history.offsets, mask, strict=True) if m]
    assert marked == ["4", "1", "9"]  # SmolLM2's tokenizer splits numbers into digits
    assert not any(Salience.fit([], "keywords", 0.7).token_mask(history))


@pytest.mark.parametrize("source, message", [
    ("{p}:out_of_range", "returned the span (0, "),
    ("{p}:not_spans", "returned int '42', expected a list of (start, end) character spans"),
])
def test_bad_salience_output_is_one_line(plugins, tiny_llama, source, message):
    history = format_history(tiny_llama.tokenizer, [Utterance("user", "Table for 4")], False)
    with pytest.raises(ConfigError, match="salience.sources: ") as info:
        Salience.fit([], source.format(p=plugins), 0.7).token_mask(history)
    assert message in str(info.value)


@pytest.mark.parametrize("sources, message", [
    ("idf|{p}:missing_fn", "has no attribute 'missing_fn'"),
    ("idf|{p}:two_args", "expected fn(text: str) -> list[tuple[int, int]]"),
    ("idf|names", "unknown salience sources ['names']"),
])
def test_bad_salience_sources_fail_at_fit(plugins, sources, message):
    with pytest.raises(ConfigError) as info:
        Salience.fit(["a text"], sources.format(p=plugins), 0.7)
    assert message in str(info.value) and str(info.value).startswith("salience.sources: ")
