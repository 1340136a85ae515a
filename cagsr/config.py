"""Config dataclasses <-> YAML presets <-> CLI flags, with help text read from field docstrings.

Every component owns one dataclass whose fields carry a docstring on the line below them.
A job (what one subcommand runs) is a dataclass of such sections. This module turns a job
class into argparse flags (`--section.field`, plus short aliases declared with
`field(metadata={"flag": "--max-steps"})`), loads YAML presets into the same classes and
validates keys, types and ranges with errors that name the offending key.

    job = load_job(SFTJob, "presets/sft.yaml", {"sft.max_steps": "30"})
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import math
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from cagsr.errors import ConfigError

PRESET_DIR = Path(__file__).parent / "presets"

RENAMED = {
    "reward.alpha": "reward.coverage_weight",
    "reward.beta": "reward.focus_weight",
    "reward.gamma": "reward.repetition_weight",
    "reward.n": "reward.repetition_ngram",
    "reward.salience": "salience.sources",
    "reward.idf_quantile": "salience.idf_quantile",
    "reward.keywords": "salience.keywords",
    "reward.entity_detector": "salience.entity_detector",
    "ppo.save_every": "checkpoints.every",
    "ppo.keep_checkpoints": "checkpoints.keep",
    "ppo.lr": "optimizer.lr",
    "ppo.critic_lr": "optimizer.critic_lr",
    "ppo.grad_clip": "optimizer.grad_clip",
    "ppo.lr_schedule": "optimizer.schedule",
    "ppo.warmup_iterations": "optimizer.warmup_iterations",
    "ppo.lora_r": "lora.r",
    "ppo.lora_alpha": "lora.alpha",
    "ppo.eval_every": "heldout.every",
    "ppo.eval_episodes": "heldout.episodes",
    "ppo.sample_episodes": "heldout.samples",
    "scoring.packed_weights": "scoring.onednn_weights",
}
"""Old dotted keys -> their new names: a config or flag that uses an old one fails with one line naming the
new one; a run folder saved under the old names is read with them moved (upgrade_saved)."""

REMOVED = {
    "model.max_context": "it only checked itself against the model; the prompt limit is the command's own "
                         "max_context (rollout.max_context for train)",
    "rollout.sampling.num_candidates": "the rollout continues every turn with one reply, so it could only be 1",
    "ppo.lora_dropout": "the PPO update runs the policy in eval mode (the ratio compares one function), so no "
                        "adapter dropout was ever drawn",
}
"""Keys that set nothing and were removed -> why; a config or flag with one fails with that line, a saved run
folder is read without it."""


def renamed(key: str) -> ConfigError:
    if key in REMOVED:
        return ConfigError(f"{key} was removed: {REMOVED[key]}")
    return ConfigError(f"{key} is now {RENAMED[key]}: rename it in your config or flags")


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Docstrings written under dataclass fields (the attribute-docstring convention)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _resolved_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_optional(tp: Any) -> tuple[bool, Any]:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) < len(get_args(tp)) and len(args) == 1:
            return True, args[0]
    return False, tp


def _parse_bool(text: str, key: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key}: expected true or false, got {text!r}")


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML value or a CLI string to type `tp`, or raise ConfigError naming `key`."""
    optional, inner = _is_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        raise ConfigError(f"{key}: must not be empty")
    origin = get_origin(inner)
    if origin is Literal:
        choices = get_args(inner)
        if value not in choices:
            raise ConfigError(f"{key}: must be one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if origin in (list, tuple):
        (item_tp, *_) = get_args(inner) or (str,)
        items = [v for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [coerce(v.strip() if isinstance(v, str) else v, item_tp, key) for v in items]
    if inner is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return _parse_bool(value, key)
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if inner is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if inner is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if math.isnan(out):
            raise ConfigError(f"{key}: must not be NaN")
        return out
    if inner in (str, Path):
        if not isinstance(value, str | Path | int | float) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected text, got {value!r}")
        return inner(value)
    if isinstance(inner, dict) or inner is dict or get_origin(inner) is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported config type {inner!r}")


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from a nested dict; unknown keys and bad values raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = _resolved_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if f"{prefix}{key}" in RENAMED or f"{prefix}{key}" in REMOVED:
            raise renamed(f"{prefix}{key}")
        if key not in names:
            raise ConfigError(f"unknown config key '{prefix}{key}' (valid: {', '.join(sorted(names))})")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        tp, key = hints[f.name], prefix + f.name
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = from_dict(tp, data[f.name] or {}, key + ".")
        else:
            kwargs[f.name] = coerce(data[f.name], tp, key)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{prefix}{err}" if prefix and not str(err).startswith(prefix) else str(err)) from None


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain nested dict of a config (Paths as text), for YAML dumps and run folders."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, Path):
            value = str(value)
        out[f.name] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A preset by file path, or by bare name from the shipped presets (`dialogue`)."""
    candidate = Path(path)
    if not candidate.exists() and not candidate.suffix:
        candidate = PRESET_DIR / f"{path}.yaml"
    if not candidate.exists():
        shipped = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))
        raise ConfigError(f"{path}: config file not found (shipped presets: {shipped})")
    try:
        data = yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f"{candidate}:{line + 1}" if line is not None else str(candidate)
        raise ConfigError(f"{where}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{candidate}: expected a mapping of config sections")
    data.pop("base", None)
    return data


SPLIT = {"heldout.samples": "heldout.replies"}
"""A key that once set two things -> the key that now sets the second: a run folder saved before the split
gets the new key with the old key's value, so that it resumes doing what it did."""


def upgrade_saved(data: dict[str, Any]) -> list[str]:
    """Move the RENAMED keys of a config saved by an earlier version to their new places (in place); the
    old keys moved. Only for run folders written before a rename: a config a user writes gets the error."""
    moved = []
    for old, new in RENAMED.items():
        if (found := _pop_dotted(data, old)) is not None:
            set_dotted(data, new, found[0])
            moved.append(old)
    for old in REMOVED:
        _pop_dotted(data, old)
    for key, second in SPLIT.items():
        found, present = _pop_dotted(data, key), _pop_dotted(data, second)
        if found is not None:
            set_dotted(data, key, found[0])
        if (value := present or found) is not None:
            set_dotted(data, second, value[0])
    return moved


def _pop_dotted(data: dict[str, Any], dotted: str) -> tuple[Any] | None:
    """Remove data['a']['b']['c'] for dotted = 'a.b.c' -> (its value,), or None where it is absent (a tuple,
    because a saved value can itself be None)."""
    *parents, leaf = dotted.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and leaf in node:
        return (node.pop(leaf),)
    return None


def load_saved_job(cls: type, path: str | Path, overrides: dict[str, Any]) -> Any:
    """A run folder's saved config.yaml (keys renamed since it was written are moved, with a one-line notice)
    <- overrides."""
    data = load_yaml(path)
    if moved := upgrade_saved(data):
        import sys

        print(f"{path}: read with renamed keys ({', '.join(f'{k} -> {RENAMED[k]}' for k in moved)})",
              file=sys.stderr)
    for key, value in overrides.items():
        set_dotted(data, key, value)
    return from_dict(cls, data)


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """data['a']['b'] = value for dotted = 'a.b'."""
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: '{part}' is not a section")
    node[leaf] = value


def load_job(cls: type, config_path: str | Path | None, overrides: dict[str, Any]) -> Any:
    """Defaults <- YAML preset <- CLI overrides (dotted keys), validated into `cls`."""
    data = load_yaml(config_path) if config_path else {}
    where = f"{config_path}: " if config_path else ""
    try:
        from_dict(cls, data)
    except ConfigError as err:
        raise ConfigError(f"{where}{err}") from None
    for key, value in overrides.items():
        set_dotted(data, key, value)
    return from_dict(cls, data)


def iter_fields(cls: type, prefix: str = ""):
    """Yield (dotted key, field, type, docstring) for every leaf field of a job class."""
    hints, docs = _resolved_types(cls), field_docs(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from iter_fields(tp, f"{prefix}{f.name}.")
        else:
            yield prefix + f.name, f, tp, docs.get(f.name, "")


def check_range(key: str, value: float | int | None, low: float | None = None, high: float | None = None,
                low_open: bool = False) -> None:
    """Range check used by __post_init__ validators: a one-line error naming the key."""
    if value is None:
        return
    if low is not None and (value <= low if low_open else value < low):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ConfigError(f"{key}: must be {bound}, got {value}")
    if high is not None and value > high:
        raise ConfigError(f"{key}: must be <= {high}, got {value}")
