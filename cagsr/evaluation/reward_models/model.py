"""A trained reward model over (context, response): MiniLM pair features -> small MLP head (torch).

    model, report = train_bradley_terry(synthetic_preference_pairs(records, seed=0))   # pairwise
    model, report = train_pointwise(read_taskmaster_rewards(path))                     # 0/1 labels
    rewards = model.score(contexts, responses)        # one float per pair, for the PPO trainer
    model.save("runs/x/reward_model"); model = RewardModel.load("runs/x/reward_model")

Features are the embeddings [c, r, c*r, |c-r|] of the rendered context and the response,
standardised with training statistics kept inside the head. Bradley-Terry minimises
-log sigmoid(s(chosen) - s(rejected)); the pointwise loss is class-weighted logistic regression
on the label. Both hold out whole groups (dialogues, problems) and report held-out accuracy.

Human labels (Taskmaster-4) are trained pointwise, not as Bradley-Terry pairs: only 220 of the
2,254 distinct contexts carry both a 1 and a 0 label, so pairs would discard about 90% of the
labels; class weights make up for the 86% of rows labelled 1.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cagsr.data.labelled import LabelledResponse, PreferencePair
from cagsr.errors import DataError
from cagsr.evaluation.config import RewardModelConfig
from cagsr.evaluation.metrics.embedding import Context, Embedder, context_text, pair_features
from cagsr.reward.registry import turn_context, turn_tensor
from cagsr.rollout.episode import Episode

FORMAT_VERSION = 1


class RewardHead(nn.Module):
    """Standardise, then Linear (hidden = 0) or Linear-ReLU-Dropout-Linear, to one score."""

    def __init__(self, dim_in: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim_in))
        self.register_buffer("scale", torch.ones(dim_in))
        if hidden > 0:
            self.net = nn.Sequential(
                nn.Linear(dim_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
            )
        else:
            self.net = nn.Sequential(nn.Linear(dim_in, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net((x - self.mean) / self.scale).squeeze(-1)


def encode_pairs(
    embedder: Embedder, config: RewardModelConfig, contexts: Sequence[Context], responses: Sequence[str]
) -> Tensor:
    """Pair features [n, 4 * dim] of rendered contexts and responses."""
    if len(contexts) != len(responses):
        raise ValueError(f"{len(contexts)} contexts but {len(responses)} responses")
    texts = [context_text(c, config.context_turns, config.max_context_chars) for c in contexts]
    return torch.from_numpy(pair_features(embedder.encode(texts), embedder.encode(list(responses))))


class RewardModel:
    """The head plus the embedder that makes its features; `score` is the reward function."""

    def __init__(
        self,
        head: RewardHead,
        config: RewardModelConfig,
        embedder: Embedder | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.head = head.eval()
        self.config = config
        self.embedder = embedder or Embedder()
        self.meta = meta or {}

    @property
    def report(self) -> dict[str, Any]:
        return self.meta.get("report", {})

    def features(self, contexts: Sequence[Context], responses: Sequence[str]) -> Tensor:
        return encode_pairs(self.embedder, self.config, contexts, responses)

    @torch.no_grad()
    def score(self, contexts: Sequence[Context], responses: Sequence[str]) -> list[float]:
        """Reward per (context, response): a logit (pointwise) or a Bradley-Terry score; higher is better."""
        if not responses:
            return []
        self.head.eval()
        return self.head(self.features(contexts, responses)).tolist()

    def save(self, path: str | Path) -> Path:
        """A folder with reward_model.safetensors and reward_model.json (config, report, provenance)."""
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.contiguous() for k, v in self.head.state_dict().items()},
            folder / "reward_model.safetensors",
        )
        meta = {
            **self.meta,
            "format": FORMAT_VERSION,
            "config": asdict(self.config),
            "embedder": self.embedder.name,
            "dim_in": int(self.head.mean.numel()),
        }
        (folder / "reward_model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, path: str | Path, embedder: Embedder | None = None) -> RewardModel:
        from safetensors.torch import load_file

        folder = Path(path)
        try:
            meta = json.loads((folder / "reward_model.json").read_text(encoding="utf-8"))
            state = load_file(folder / "reward_model.safetensors")
        except (OSError, ValueError) as err:
            raise DataError(f"{folder}: not a saved reward model ({type(err).__name__})") from None
        if meta.get("format") != FORMAT_VERSION:
            raise DataError(f"{folder}: reward model format {meta.get('format')} (expected {FORMAT_VERSION})")
        embedder = embedder or Embedder()
        if meta.get("embedder") != embedder.name:
            raise DataError(f"{folder}: trained on embedder {meta.get('embedder')}, not {embedder.name}")
        config = RewardModelConfig(**meta["config"])
        head = RewardHead(meta["dim_in"], config.hidden, config.dropout)
        head.load_state_dict(state)
        return cls(head, config, embedder, meta)


def split_groups(groups: Sequence[str], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of (train, validation) items; whole groups go to one side."""
    unique = sorted(set(groups))
    random.Random(seed).shuffle(unique)
    n_val = round(len(unique) * val_fraction) if len(unique) > 1 else 0
    val = set(unique[:n_val])
    return [i for i, g in enumerate(groups) if g not in val], [i for i, g in enumerate(groups) if g in val]


def _fit(
    head: RewardHead, n: int, loss_fn: Callable[[Tensor], Tensor], config: RewardModelConfig, seed: int
) -> list[float]:
    """Mini-batch AdamW over item indices 0..n-1; returns the mean loss of each epoch."""
    opt = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    history = []
    head.train()
    for _ in range(config.epochs):
        order, total = torch.randperm(n, generator=gen), 0.0
        for start in range(0, n, config.batch_size):
            batch = order[start : start + config.batch_size]
            loss = loss_fn(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(batch)
        history.append(total / max(1, n))
    head.eval()
    return history


def _new_head(train_x: Tensor, config: RewardModelConfig, seed: int) -> RewardHead:
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
        torch.manual_seed(seed)
        head = RewardHead(train_x.shape[1], config.hidden, config.dropout)
    head.mean.copy_(train_x.mean(0))
    head.scale.copy_(train_x.std(0) + 1e-6)
    return head


@torch.no_grad()
def _pair_accuracy(head: RewardHead, chosen: Tensor, rejected: Tensor) -> float:
    return float((head(chosen) > head(rejected)).float().mean()) if len(chosen) else float("nan")


def train_bradley_terry(
    pairs: Sequence[PreferencePair],
    config: RewardModelConfig | None = None,
    seed: int = 0,
    embedder: Embedder | None = None,
) -> tuple[RewardModel, dict[str, Any]]:
    """Bradley-Terry on (context, chosen, rejected); report held-out pairwise accuracy."""
    config = config or RewardModelConfig()
    if len(pairs) < 2:
        raise DataError(f"Bradley-Terry training needs at least 2 preference pairs, got {len(pairs)}")
    embedder = embedder or Embedder()
    contexts = [p.context for p in pairs]
    chosen = encode_pairs(embedder, config, contexts, [p.chosen for p in pairs])
    rejected = encode_pairs(embedder, config, contexts, [p.rejected for p in pairs])
    train, val = split_groups([p.group for p in pairs], config.val_fraction, seed)
    tr = torch.tensor(train)
    head = _new_head(torch.cat([chosen[tr], rejected[tr]]), config, seed)

    def loss_fn(batch: Tensor) -> Tensor:
        idx = tr[batch]
        return -torch.nn.functional.logsigmoid(head(chosen[idx]) - head(rejected[idx])).mean()

    losses = _fit(head, len(train), loss_fn, config, seed)
    va = torch.tensor(val, dtype=torch.long)
    report = {
        "objective": "bradley-terry",
        "seed": seed,
        "pairs_train": len(train),
        "pairs_val": len(val),
        "groups_val": len({pairs[i].group for i in val}),
        "final_loss": losses[-1],
        "train_pairwise_accuracy": _pair_accuracy(head, chosen[tr], rejected[tr]),
        "val_pairwise_accuracy": _pair_accuracy(head, chosen[va], rejected[va]),
    }
    return RewardModel(head, config, embedder, {"report": report}), report


def _classification_report(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    if len(labels) == 0:
        return {"balanced_accuracy": float("nan"), "auc": float("nan"), "accuracy": float("nan")}
    predicted = (logits >= 0).astype(int)
    both = len(set(labels.tolist())) == 2
    return {
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted)) if both else float("nan"),
        "auc": float(roc_auc_score(labels, logits)) if both else float("nan"),
        "accuracy": float((predicted == labels).mean()),
    }


def train_pointwise(
    examples: Sequence[LabelledResponse],
    config: RewardModelConfig | None = None,
    seed: int = 0,
    embedder: Embedder | None = None,
) -> tuple[RewardModel, dict[str, Any]]:
    """Class-weighted logistic loss on 0/1 labels; report held-out balanced accuracy and AUC."""
    config = config or RewardModelConfig()
    labels = torch.tensor([float(e.label) for e in examples])
    if len(examples) < 2 or len(set(labels.tolist())) < 2:
        raise DataError("pointwise reward training needs examples of both labels (0 and 1)")
    embedder = embedder or Embedder()
    x = encode_pairs(embedder, config, [e.context for e in examples], [e.response for e in examples])
    train, val = split_groups([e.group for e in examples], config.val_fraction, seed)
    tr = torch.tensor(train)
    head = _new_head(x[tr], config, seed)
    # Balanced class weights: each class contributes half the loss whatever its share.
    positives = float(labels[tr].sum())
    weight_of = {
        1.0: len(train) / (2 * max(1.0, positives)),
        0.0: len(train) / (2 * max(1.0, len(train) - positives)),
    }
    weights = torch.tensor([weight_of[v] for v in labels.tolist()])

    def loss_fn(batch: Tensor) -> Tensor:
        idx = tr[batch]
        raw = torch.nn.functional.binary_cross_entropy_with_logits(
            head(x[idx]), labels[idx], reduction="none"
        )
        return (raw * weights[idx]).mean()

    losses = _fit(head, len(train), loss_fn, config, seed)
    with torch.no_grad():
        logits = head(x).numpy()
    y = labels.numpy().astype(int)
    report = {
        "objective": "pointwise",
        "seed": seed,
        "examples_train": len(train),
        "examples_val": len(val),
        "positive_share": float(y.mean()),
        "final_loss": losses[-1],
        **{f"train_{k}": v for k, v in _classification_report(logits[train], y[train]).items()},
        **{f"val_{k}": v for k, v in _classification_report(logits[val], y[val]).items()},
    }
    return RewardModel(head, config, embedder, {"report": report}), report


_LOADED: dict[str, RewardModel] = {}


def reward_model_reward(episodes: list[Episode], job) -> Tensor:
    """Score each dialogue turn with the reward model at reward.model_path; a chain of thought is scored
    as a whole solution (how the model was trained) and the score goes to its answer turn."""
    model = _LOADED.get(job.reward.model_path) or RewardModel.load(job.reward.model_path)
    _LOADED[job.reward.model_path] = model
    pairs = [(ep, t) for ep in episodes for t in range(ep.num_turns) if ep.kind == "dialogue" or t == ep.final_turn]
    responses = [ep.turn_texts[t] if ep.kind == "dialogue" else ep.utterances[-1].text for ep, t in pairs]
    scores = model.score([turn_context(ep, t) for ep, t in pairs], responses)
    lookup = {(id(ep), t): s for (ep, t), s in zip(pairs, scores, strict=True)}
    return turn_tensor(episodes, lambda ep, t: lookup.get((id(ep), t), 0.0))
