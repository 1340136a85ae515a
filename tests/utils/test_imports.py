"""Loading a user's function by import path: module or file, one ConfigError line for every failure."""

import doctest
import importlib
import sys

import pytest

from cagsr.errors import ConfigError
from cagsr.utils.imports import is_import_path, load_callable, resolve

CALL = "fn(episodes, job)"


def load(spec, **kw):
    return load_callable(spec, setting="reward.kind", call=CALL, args=2, **kw)


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("module", ["cagsr.utils.imports", "cagsr.reward.registry", "cagsr.reward.combine",
                                    "cagsr.reward.builtin", "cagsr.salience.masks",
                                    "cagsr.reward.functional"])
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_a_function_from_a_file_and_from_a_module(tmp_path, monkeypatch):
    (tmp_path / "my_rewards.py").write_text("def score(episodes, job):\n    return 7\n")
    assert load(f"{tmp_path}/my_rewards.py:score")(None, None) == 7
    monkeypatch.chdir(tmp_path)
    assert load("my_rewards.py:score")(None, None) == 7  # relative to the working directory
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load("my_rewards:score")(None, None) == 7


def test_a_file_already_imported_is_reused_not_reloaded(tmp_path):
    path = tmp_path / "stateful.py"
    path.write_text("STATE = []\ndef fn(episodes, job):\n    STATE.append(1)\n    return len(STATE)\n")
    first, second = load(f"{path}:fn"), load(f"{path}:fn")
    assert first is second and first(None, None) == 1 and second(None, None) == 2
    assert sys.modules[first.__module__].STATE == [1, 1]


@pytest.mark.parametrize("source, spec, message", [
    (None, "{d}/missing.py:fn", "no such file"),
    (None, "no_such_package_xyz.mod:fn", "no module named 'no_such_package_xyz'"),
    ("def other(episodes, job):\n    pass\n", "{f}:fn", "has no attribute 'fn'"),
    ("fn = 3\n", "{f}:fn", "is not callable (expected fn(episodes, job))"),
    ("def fn(episodes):\n    pass\n", "{f}:fn", "has the signature (episodes), expected fn(episodes, job)"),
    ("def fn(episodes, job, extra):\n    pass\n", "{f}:fn", "missing a required argument: 'extra'"),
    ("import no_such_dependency_xyz\n", "{f}:fn", "no module named 'no_such_dependency_xyz'"),
    ("def fn(:\n", "{f}:fn", "importing it failed"),
    ("raise RuntimeError('boom\\nsecond line')\n", "{f}:fn", "RuntimeError: boom"),
])
def test_every_failure_is_one_line_naming_the_setting(tmp_path, source, spec, message):
    file = tmp_path / f"user_{abs(hash(spec + (source or ''))) % 10**8}.py"
    if source is not None:
        file.write_text(source)
    with pytest.raises(ConfigError) as info:
        load(spec.format(d=tmp_path, f=file))
    text = one_line(info)
    assert text.startswith("reward.kind: ") and message in text, text


def test_signature_with_defaults_and_varargs_fits(tmp_path):
    file = tmp_path / "flexible.py"
    file.write_text("def a(episodes, job=None, *, scale=1.0):\n    return 1\ndef b(*args):\n    return 2\n")
    assert load(f"{file}:a")([], None) == 1 and load(f"{file}:b")([], None) == 2


def test_table_names_and_unknown_names():
    table = {"hypot": "math:hypot"}
    assert resolve("hypot", table, what="thing", setting="x.kind", call="f(a, b)", args=2)(3, 4) == 5.0
    with pytest.raises(ConfigError) as info:
        resolve("nope", table, what="thing", setting="x.kind", call="f(a, b)", extra_names=["auto"])
    assert one_line(info) == ("x.kind: unknown thing 'nope' (built-in: auto, hypot; or package.module:function, "
                              "path/to/file.py:function)")
    assert not is_import_path("nope") and not is_import_path(":fn") and not is_import_path("mod:")
