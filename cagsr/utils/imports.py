"""Load a user's function by import path, and the built-ins of a name -> import-path table.

Two spellings, as in `--reward.kind my_rewards.py:politeness`:

    package.module:function          imported with importlib (the module must be on sys.path)
    path/to/file.py:function         loaded from the file (relative to the working directory)

A file that is already imported (a test module, say) is reused, not loaded a second time, so module
state is shared. Every failure (no such file or module, an error while importing it, no such
attribute, not callable, a signature that does not fit) is one ConfigError line naming the setting.

>>> is_import_path("attention"), is_import_path("my_rewards.py:politeness"), is_import_path("a.b:c")
(False, True, True)
>>> load_callable("math:hypot", setting="x", call="hypot(x, y)", args=2)(3, 4)
5.0
>>> load_callable("math:pi", setting="reward.kind", call="fn(episodes, job)", args=2)
Traceback (most recent call last):
...
cagsr.errors.ConfigError: reward.kind: math:pi is not callable (expected fn(episodes, job))
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cagsr.errors import ConfigError


def is_import_path(name: str) -> bool:
    """True for `module:function` and `file.py:function` (a table name has no colon)."""
    module, sep, attr = name.rpartition(":")
    return bool(sep and module and attr)


def _module_from_file(path: Path, setting: str, spec: str):
    resolved = path.resolve()
    if not resolved.is_file():
        raise ConfigError(f"{setting}: {spec}: no such file {str(path)!r}")
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve() == resolved:
            return module
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    name = f"cagsr_user_{resolved.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise ConfigError(f"{setting}: {spec}: cannot load {str(path)!r} as Python")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # before exec: dataclasses and pickling look the module up by name
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _import(module_part: str, setting: str, spec: str):
    try:
        if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
            return _module_from_file(Path(module_part), setting, spec)
        return importlib.import_module(module_part)
    except ConfigError:
        raise
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{setting}: {spec}: no module named {exc.name!r}") from None
    except Exception as exc:  # the user's module failed while importing
        where = ""
        if exc.__traceback__ is not None:
            frame = inspect.getinnerframes(exc.__traceback__)[-1]
            where = f" ({Path(frame.filename).name}:{frame.lineno})"
        message = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(f"{setting}: {spec}: importing it failed{where}: {type(exc).__name__}: {message}") from None


def check_signature(fn: Callable, setting: str, spec: str, call: str, args: int = 0,
                    kwargs: Iterable[str] = ()) -> None:
    """Raise a one-line ConfigError unless fn can be called with `args` positional arguments and the
    keywords `kwargs` (`call` is the documented call, e.g. "fn(episodes, job)")."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have none: trust them
        return
    try:
        signature.bind(*([None] * args), **dict.fromkeys(kwargs))
    except TypeError as exc:
        raise ConfigError(f"{setting}: {spec} has the signature {signature}, expected {call} ({exc})") from None


def load_callable(spec: str, *, setting: str, call: str, args: int = 0, kwargs: Iterable[str] = (),
                  check: bool = True) -> Callable:
    """The callable that `module:function` or `file.py:function` names, its signature checked (unless
    check is False: the caller checks it with check_signature once it knows the arguments)."""
    if not is_import_path(spec):
        raise ConfigError(f"{setting}: {spec!r} is not an import path (package.module:function or file.py:function)")
    module_part, _, attr = spec.rpartition(":")
    module = _import(module_part, setting, spec)
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"{setting}: {spec}: {module_part!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ConfigError(f"{setting}: {spec} is not callable (expected {call})")
    if check:
        check_signature(target, setting, spec, call, args, kwargs)
    return target


def resolve(name: str, table: Mapping[str, str], *, what: str, setting: str, call: str, args: int = 0,
            kwargs: Iterable[str] = (), extra_names: Iterable[str] = (), check: bool = True) -> Callable:
    """A built-in `what` (reward, simulator, ...) by its name in `table` (name -> import path) or a user
    callable by import path."""
    if name in table:
        return load_callable(table[name], setting=setting, call=call, args=args, kwargs=kwargs, check=check)
    if is_import_path(name):
        return load_callable(name, setting=setting, call=call, args=args, kwargs=kwargs, check=check)
    known = ", ".join([*extra_names, *table])
    raise ConfigError(f"{setting}: unknown {what} {name!r} (built-in: {known}; or package.module:function, "
                      f"path/to/file.py:function)")
