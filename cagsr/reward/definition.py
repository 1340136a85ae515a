"""The reward a run trains on, defined once and carried by the run.

One factory turns the config into a RewardDefinition: which reward parts with which weights, how the
attention reward weighs and reads its components, which attention is captured, which history tokens are
salient (sources and the IDF table fitted on the training records), the turn weights and the chain of
thought's step split. The trainer writes it into the run folder (and every checkpoint and the final model)
as readable YAML, and every command that reads a run scores with it unless told otherwise.

    definition = define_reward(job.reward, job.salience, job.attention, max_steps=job.rollout.max_steps,
                               corpus=corpus_texts(train_records), encoder_decoder=False)
    definition.save(run_dir)                    # reward.yaml + reward-idf.json (the fitted IDF table)
    definition = find_definition("runs/dialogue")       # None when the folder holds no definition
    salience, stage = definition.salience_marker(), definition.turn_reward()

Fields are grouped by what they set; a field added later takes its default when an older reward.yaml is
read, so the file can grow (say, which model reads the attention) without a new format.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from cagsr.attention.config import AttentionConfig
from cagsr.errors import ConfigError
from cagsr.reward.combine import AttentionWeights, RewardPart, TurnReward, build_turn_reward
from cagsr.reward.config import RewardConfig, resolve_reward
from cagsr.reward.head_probe import HEAD_PROBE, HEAD_SIGNALS, HeadProbeConfig, probe_of
from cagsr.reward.registry import ATTENTION, PASS_SIGNALS, get_reward
from cagsr.salience.config import SalienceConfig
from cagsr.salience.idf import IdfTable
from cagsr.salience.masks import Salience

FILE = "reward.yaml"
IDF_FILE = "reward-idf.json"
FORMAT = "cagsr-reward-v1"


@dataclass(frozen=True, kw_only=True)
class PartSpec:
    """One weighted part of the trained reward."""

    name: str
    """Logged as reward/<name>."""
    spec: str
    """attention, a built-in reward or an import path."""
    weight: float
    """Its weight in the total."""


@dataclass(frozen=True, kw_only=True)
class AttentionTerms:
    """What the attention reward reads from the captured attention, and how it weighs it (what
    attention_reward.turn_components and the reward stage read)."""

    history: str = "multi_turn"
    coverage_scope: str = "history"
    coverage_weight: float = 1.0
    focus_weight: float = 0.1
    repetition_weight: float = 0.5
    repetition_ngram: int = 3
    tau0: float = 1.0
    kappa: float = 0.25
    history_tokens: str = "all"
    sink_tokens: str = "template|special|first"
    block_tokens: int = 5
    head_probe: HeadProbeConfig | None = None
    """reward.kind head_probe: the fitted probe whose score replaces the weighted components."""
    head_signals: bool = False
    """The capture keeps every head's statistics for the per-head signals (a reward part reads mean_lookback)."""

    @property
    def weights(self) -> AttentionWeights:
        return AttentionWeights(coverage=self.coverage_weight, focus=self.focus_weight,
                                repetition=self.repetition_weight)


@dataclass(frozen=True, kw_only=True)
class CaptureSettings:
    """Which attention the capture pass keeps (attention.config.AttentionConfig)."""

    last_layers: int = 1
    heads: str = ""
    window: int | None = None
    prune_above: int | None = None
    prune_threshold: float = 1e-3

    def config(self) -> AttentionConfig:
        return AttentionConfig(**dataclasses.asdict(self))


@dataclass(frozen=True, kw_only=True)
class SalienceSettings:
    """Which history tokens are salient: the sources and the fitted threshold (the table is in IDF_FILE)."""

    sources: str = "idf|entities|keywords"
    idf_quantile: float = 0.7
    keywords: tuple[str, ...] = ()
    entity_detector: str = "rules"
    threshold: float | None = None
    """IDF from which a word is salient, fitted with the table."""


@dataclass(frozen=True, kw_only=True)
class RewardDefinition:
    """Everything the reward of a turn depends on besides the model and the episode."""

    parts: tuple[PartSpec, ...] = (PartSpec(name=ATTENTION, spec=ATTENTION, weight=1.0),)
    model_path: str | None = None
    reader: str = "policy"
    """Whose teacher-forced pass the reward reads: the policy's, or the frozen reference's (reward.reader)."""
    terms: AttentionTerms = AttentionTerms()
    attention: CaptureSettings = CaptureSettings()
    salience: SalienceSettings = SalienceSettings()
    final_weight: float = 2.0
    """Turn weight of a chain of thought's answer turn (dialogue turns all weigh 1)."""
    max_steps: int = 8
    """A chain of thought is split into at most this many steps (reward turns)."""
    idf: IdfTable | None = field(default=None, compare=False, repr=False)
    """The IDF table fitted on the training records (saved as IDF_FILE)."""

    def salience_marker(self) -> Salience:
        s = self.salience
        return Salience.fitted(s.sources, self.idf, s.threshold, list(s.keywords), s.entity_detector)

    @functools.cached_property
    def stage(self) -> TurnReward:
        """The reward stage of this definition (parts resolved once)."""
        from_pass = {ATTENTION, HEAD_PROBE, *PASS_SIGNALS}  # read from the scoring pass, not called
        parts = tuple(RewardPart(p.name, p.spec, p.weight, None if p.spec in from_pass else
                                 get_reward(p.spec, "reward.parts"), p.spec if p.spec in PASS_SIGNALS else None)
                      for p in self.parts)
        return TurnReward(parts=parts, weights=self.terms.weights)

    def turn_reward(self) -> TurnReward:
        return self.stage

    def attention_config(self) -> AttentionConfig:
        return self.attention.config()

    def final_turn_weight(self, kind: str) -> float:
        """The answer turn's weight for episodes of `kind` (dialogue replies all weigh 1)."""
        return self.final_weight if kind == "math" else 1.0

    # -- the file ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {"format": FORMAT}
        for f in dataclasses.fields(self):
            if f.name == "idf":
                continue
            value = getattr(self, f.name)
            if f.name == "parts":
                value = [dataclasses.asdict(p) for p in value]
            elif dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)
                value = {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
            out[f.name] = value
        out["salience"]["idf_table"] = IDF_FILE if self.idf is not None else None
        return out

    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.idf is not None:
            self.idf.save(folder / IDF_FILE)
        path = folder / FILE
        header = ("# The reward this run trains on (cagsr.reward.definition): `cagsr reward|eval|validity --model RUN`\n"
                  "# and `cagsr report` score with it unless told otherwise (--reward-from settings).\n")
        path.write_text(header + yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: Path) -> RewardDefinition:
        path = Path(folder) / FILE
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: not a readable reward definition ({type(err).__name__})") from None
        if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
            raise ConfigError(f"{path}: not a reward definition written by cagsr ({FORMAT})")
        return from_dict(data, path)


def _section(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown} (written by a newer cagsr?)")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def from_dict(data: dict[str, Any], path: Path) -> RewardDefinition:
    """The definition of a reward.yaml's contents (missing keys take their defaults)."""
    data = dict(data)
    salience = dict(data.pop("salience", {}) or {})
    table = salience.pop("idf_table", None)
    kwargs: dict[str, Any] = {}
    sections = {"terms": AttentionTerms, "attention": CaptureSettings}
    for key, value in data.items():
        if key == "parts":
            kwargs[key] = tuple(_section(PartSpec, p, f"{path}: parts") for p in value)
        elif key == "terms" and isinstance(value, dict) and isinstance(value.get("head_probe"), dict):
            probe = HeadProbeConfig(**value["head_probe"])  # a nested section: its lists stay lists
            kwargs[key] = replace(_section(AttentionTerms, {**value, "head_probe": None}, f"{path}: terms"),
                                  head_probe=probe)
        elif key in sections:
            kwargs[key] = _section(sections[key], value, f"{path}: {key}")
        elif key in {f.name for f in dataclasses.fields(RewardDefinition)} - {"idf", "salience"}:
            kwargs[key] = value
        else:
            raise ConfigError(f"{path}: unknown key {key!r} (written by a newer cagsr?)")
    kwargs["salience"] = _section(SalienceSettings, salience, f"{path}: salience")
    if table:
        idf_path = path.parent / table
        try:
            kwargs["idf"] = IdfTable.load(idf_path)
        except (OSError, ValueError, json.JSONDecodeError) as err:
            raise ConfigError(f"{idf_path}: the reward's IDF table cannot be read ({type(err).__name__})") from None
    return RewardDefinition(**kwargs)


def define_reward(reward: RewardConfig, salience: SalienceConfig, attention: AttentionConfig, *, max_steps: int,
                  corpus: list[str], encoder_decoder: bool) -> RewardDefinition:
    """THE factory: the config's reward sections -> the definition (parts resolved and checked, salience fitted
    on `corpus`, sink tokens resolved for the model kind)."""
    stage = build_turn_reward(reward)  # every part resolved: a bad one is a one-line ConfigError
    fitted = Salience.fit(corpus, salience.sources, salience.idf_quantile, salience.keywords, salience.entity_detector)
    resolved = resolve_reward(reward, encoder_decoder)
    terms = AttentionTerms(**{f.name: getattr(resolved, f.name) for f in dataclasses.fields(AttentionTerms)
                              if f.name not in ("head_probe", "head_signals")}, head_probe=probe_of(resolved),
                           head_signals=any(p.spec in HEAD_SIGNALS for p in stage.parts))
    return RewardDefinition(
        parts=tuple(PartSpec(name=p.name, spec=p.spec, weight=p.weight) for p in stage.parts),
        model_path=reward.model_path,
        reader=getattr(reward, "reader", "policy"),
        terms=terms,
        attention=CaptureSettings(**dataclasses.asdict(attention)),
        salience=SalienceSettings(sources=salience.sources, idf_quantile=salience.idf_quantile,
                                  keywords=tuple(salience.keywords), entity_detector=salience.entity_detector,
                                  threshold=fitted.threshold),
        final_weight=reward.final_weight,
        max_steps=max_steps,
        idf=fitted.idf,
    )


def find_definition(model: str | Path) -> RewardDefinition | None:
    """The definition saved with a run folder (or its final model or checkpoint folder); None for a plain
    model, a preset name or a hub name."""
    path = Path(model).expanduser()
    if not path.is_dir():
        return None
    # A model folder inside a run (RUN/model, RUN/checkpoints/step-N/policy) reads the run's.
    for folder in (path, *((path.parent,) if (path / "config.json").is_file() else ())):
        if (folder / FILE).is_file():
            return RewardDefinition.load(folder)
    return None


def command_definition(job, loaded, corpus, max_steps: int):
    """The reward a command that reads a model scores with: the run's own definition (job.reward_from = run and
    --model a run folder that has one), else the one the job's settings define, salience fitted on corpus()."""
    import sys

    if getattr(job, "reward_from", "settings") == "run" and (found := find_definition(job.model.name)) is not None:
        print(f"scoring with the reward of {job.model.name} (its reward.yaml; --reward-from settings for this "
              "command's own)", file=sys.stderr)
        return found
    return define_reward(getattr(job, "reward", None) or RewardConfig(), getattr(job, "salience", None) or
                        SalienceConfig(), getattr(job, "attention", None) or AttentionConfig(), max_steps=max_steps,
                        corpus=corpus(), encoder_decoder=loaded.is_encoder_decoder)
