"""The on-topic (consistency) classifier: does this response belong to this dialogue context?

    clf = ensure_consistency_classifier(dialogues, name="star")     # trains once, then reloads
    share = clf.acceptance_rate(contexts, generated)                 # the consistency metric
    clf, report = train_consistency(dialogues, seed=0)               # report["val_accuracy"]

Positives are recorded agent responses in their own context (the last `context_turns`
utterances before them). Negatives pair the same contexts with agent responses from another
dialogue of the same domain (hard: same vocabulary) and from a dialogue of another domain
(easy: off topic). Features are MiniLM embeddings [c, r, c*r, |c-r|], standardised, and the
head is an L2 logistic regression. Dialogues are split before pairing, so held-out accuracy
never sees a training context or response.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cagsr.data.schema import Dialogue
from cagsr.errors import DataError
from cagsr.evaluation.config import ConsistencyConfig
from cagsr.evaluation.embedding import Context, Embedder, context_text, pair_features, render_history
from cagsr.utils.paths import cagsr_home

FORMAT_VERSION = 1
KINDS = ("recorded", "same-domain", "other-domain")


@dataclass
class PairSet:
    """(context, response) texts with 1 for the recorded response, 0 for a borrowed one."""

    contexts: list[str]
    responses: list[str]
    labels: list[int]
    kinds: list[str]


def _pools(dialogues: Sequence[Dialogue], agent_texts: list[list[str]]) -> tuple[dict, dict]:
    """Per domain: dialogues of the same domain, and of domains sharing no component ('bank+hotel')."""
    by_domain: dict[str, list[int]] = {}
    for k, d in enumerate(dialogues):
        if agent_texts[k]:
            by_domain.setdefault(d.domain, []).append(k)
    other = {
        domain: [k for o, ks in by_domain.items() if not (set(o.split("+")) & set(domain.split("+"))) for k in ks]
        for domain in by_domain
    }
    return by_domain, other


def build_pairs(dialogues: Sequence[Dialogue], config: ConsistencyConfig, seed: int) -> PairSet:
    """Positives and their two negatives from these dialogues only (call once per split)."""
    rng = random.Random(seed)
    agent_texts = [[d.turns[i].text for i in d.agent_turn_indices()] for d in dialogues]
    same_pool, other_pool = _pools(dialogues, agent_texts)
    pairs = PairSet([], [], [], [])

    def add(context: str, response: str, label: int, kind: str) -> None:
        pairs.contexts.append(context)
        pairs.responses.append(response)
        pairs.labels.append(label)
        pairs.kinds.append(kind)

    for k, d in enumerate(dialogues):
        indices = d.agent_turn_indices()
        pools = {"same-domain": same_pool.get(d.domain, []), "other-domain": other_pool.get(d.domain, [])}
        for i in rng.sample(indices, min(config.turns_per_dialogue, len(indices))):
            context = render_history(d.turns[:i], config.context_turns, config.max_context_chars)
            recorded = d.turns[i].text
            add(context, recorded, 1, "recorded")
            for kind, pool in pools.items():
                candidates = [j for j in pool if j != k] if len(pool) < 64 else pool
                j = rng.choice(candidates) if candidates else k
                if j == k:
                    continue
                borrowed = rng.choice(agent_texts[j])
                if borrowed.strip().lower() != recorded.strip().lower():  # "Thank you!" is on topic anywhere
                    add(context, borrowed, 0, kind)
    return pairs


def corpus_fingerprint(dialogues: Sequence[Dialogue]) -> str:
    """Hash of ids, domains and texts: a saved classifier is reused only for the same corpus."""
    digest = hashlib.sha1()
    for d in dialogues:
        digest.update(f"{d.id}\x1f{d.domain}\x1e".encode())
        for u in d.turns:
            digest.update(f"{u.role}\x1f{u.text}\x1e".encode())
    return digest.hexdigest()


class ConsistencyClassifier:
    """Standardised pair features -> logistic regression; inference is numpy only."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float,
                 config: ConsistencyConfig, embedder: Embedder | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        self.mean, self.scale, self.coef, self.intercept = mean, scale, coef, float(intercept)
        self.config = config
        self.embedder = embedder or Embedder()
        self.meta = meta or {}

    @property
    def report(self) -> dict[str, Any]:
        return self.meta.get("report", {})

    def features(self, contexts: Sequence[Context], responses: Sequence[str]) -> np.ndarray:
        if len(contexts) != len(responses):
            raise ValueError(f"{len(contexts)} contexts but {len(responses)} responses")
        texts = [context_text(c, self.config.context_turns, self.config.max_context_chars) for c in contexts]
        return pair_features(self.embedder.encode(texts), self.embedder.encode(list(responses)))

    def probabilities(self, contexts: Sequence[Context], responses: Sequence[str]) -> np.ndarray:
        """P(on topic) per pair; contexts are rendered history text or lists of Utterances."""
        if not responses:
            return np.zeros(0)
        z = ((self.features(contexts, responses) - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def accepts(self, contexts: Sequence[Context], responses: Sequence[str]) -> list[bool]:
        return [bool(p >= self.config.threshold) for p in self.probabilities(contexts, responses)]

    def acceptance_rate(self, contexts: Sequence[Context], responses: Sequence[str]) -> float:
        """The consistency metric: share of responses accepted as on-topic (nan for none)."""
        accepted = self.accepts(contexts, responses)
        return sum(accepted) / len(accepted) if accepted else float("nan")

    def save(self, path: str | Path) -> Path:
        """A folder with consistency.npz (weights) and consistency.json (config, report, provenance)."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "consistency.npz", mean=self.mean, scale=self.scale, coef=self.coef,
                 intercept=np.array([self.intercept]))
        meta = {**self.meta, "format": FORMAT_VERSION, "config": asdict(self.config), "embedder": self.embedder.name}
        (folder / "consistency.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, path: str | Path, embedder: Embedder | None = None) -> ConsistencyClassifier:
        folder = Path(path)
        try:
            meta = json.loads((folder / "consistency.json").read_text(encoding="utf-8"))
            weights = np.load(folder / "consistency.npz")
        except (OSError, ValueError) as err:
            raise DataError(f"{folder}: not a saved consistency classifier ({type(err).__name__})") from None
        if meta.get("format") != FORMAT_VERSION:
            raise DataError(f"{folder}: classifier format {meta.get('format')} (expected {FORMAT_VERSION}); retrain it")
        embedder = embedder or Embedder()
        if meta.get("embedder") != embedder.name:
            raise DataError(f"{folder}: trained on embedder {meta.get('embedder')}, not {embedder.name}")
        return cls(weights["mean"], weights["scale"], weights["coef"], float(weights["intercept"][0]),
                   ConsistencyConfig(**meta["config"]), embedder, meta)


def _accuracy_by_kind(pairs: PairSet, predicted: np.ndarray) -> dict[str, float]:
    labels, kinds = np.array(pairs.labels), np.array(pairs.kinds)
    out = {"accuracy": float((predicted == labels).mean())}
    for kind in KINDS:
        mask = kinds == kind
        if mask.any():
            out[f"accuracy_{kind}"] = float((predicted[mask] == labels[mask]).mean())
    return out


def train_consistency(dialogues: Sequence[Dialogue], seed: int = 0, config: ConsistencyConfig | None = None,
                      embedder: Embedder | None = None) -> tuple[ConsistencyClassifier, dict[str, Any]]:
    """Fit on a dialogue split, report held-out accuracy (overall and per negative kind)."""
    from sklearn.linear_model import LogisticRegression

    config = config or ConsistencyConfig()
    usable = [d for d in dialogues if d.agent_turn_indices()]
    order = random.Random(seed).sample(range(len(usable)), len(usable))[: config.max_dialogues]
    if len(order) < 4:
        raise DataError(f"consistency classifier: needs at least 4 dialogues with agent turns, got {len(order)}")
    n_val = max(2, round(len(order) * config.val_fraction))
    val_set = [usable[i] for i in order[:n_val]]
    train_set = [usable[i] for i in order[n_val:]]
    clf = ConsistencyClassifier(np.zeros(1), np.ones(1), np.zeros(1), 0.0, config, embedder)
    train, val = build_pairs(train_set, config, seed), build_pairs(val_set, config, seed + 1)
    x = clf.features(train.contexts, train.responses)
    clf.mean, clf.scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    # Balanced weights: there are about two negatives per positive.
    model = LogisticRegression(C=config.regularisation, class_weight="balanced", max_iter=2000)
    model.fit((x - clf.mean) / clf.scale, np.array(train.labels))
    clf.coef, clf.intercept = model.coef_[0].astype(np.float64), float(model.intercept_[0])
    val_pred = (clf.probabilities(val.contexts, val.responses) >= config.threshold).astype(int)
    train_pred = (clf.probabilities(train.contexts, train.responses) >= config.threshold).astype(int)
    report = {
        "seed": seed, "dialogues_train": len(train_set), "dialogues_val": len(val_set),
        "pairs_train": len(train.labels), "pairs_val": len(val.labels),
        "train_accuracy": float((train_pred == np.array(train.labels)).mean()),
        **{f"val_{k}": v for k, v in _accuracy_by_kind(val, val_pred).items()},
    }
    clf.meta = {"report": report, "seed": seed}
    return clf, report


def ensure_consistency_classifier(
    dialogues: Sequence[Dialogue], name: str = "default", seed: int = 0, config: ConsistencyConfig | None = None,
    folder: str | Path | None = None, embedder: Embedder | None = None,
) -> ConsistencyClassifier:
    """Load the classifier saved for this corpus and config, or train and save it first.

    It lives in `folder`, or cagsr_home()/classifiers/NAME; a different corpus, seed, config or
    embedder under the same folder is retrained and overwrites it.
    """
    config = config or ConsistencyConfig()
    embedder = embedder or Embedder()
    path = Path(folder) if folder is not None else cagsr_home() / "classifiers" / name
    fingerprint = corpus_fingerprint(dialogues)
    meta_file = path / "consistency.json"
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        wanted = {"corpus": fingerprint, "seed": seed, "config": asdict(config), "embedder": embedder.name}
        if all(meta.get(k) == v for k, v in wanted.items()) and meta.get("format") == FORMAT_VERSION:
            return ConsistencyClassifier.load(path, embedder)
    clf, _ = train_consistency(dialogues, seed, config, embedder)
    clf.meta["corpus"] = fingerprint
    clf.save(path)
    return clf
