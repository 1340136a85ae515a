"""Config dataclasses of the evaluation components (one per component, a docstring under every field).

    section = ConsistencyConfig(max_dialogues=300)      # or load_job(...) from a YAML preset

Each field's docstring is its help text in presets and on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass

from cagsr.config import check_range


@dataclass
class EmbedderConfig:
    model: str = "minilm"
    """Sentence-embedding model: 'minilm' (the bundled offline all-MiniLM-L6-v2) or a local model folder."""
    batch_size: int = 64
    """Texts encoded per forward pass."""
    max_seq_length: int = 128
    """Word pieces kept per text; 128 covers almost every dialogue turn and is twice as fast as 256 on CPU."""
    device: str = "auto"
    """cpu, cuda, or auto (cuda when available)."""
    cache_size: int = 200_000
    """Texts whose embeddings are kept in memory, so repeated contexts are encoded once per process."""

    def __post_init__(self) -> None:
        check_range("embedder.batch_size", self.batch_size, low=1)
        check_range("embedder.max_seq_length", self.max_seq_length, low=8)
        check_range("embedder.cache_size", self.cache_size, low=0)


@dataclass
class MetricsConfig:
    bert_model: str = "minilm"
    """BERTScore model: 'minilm' (bundled, offline) or a local model folder."""
    bert_layers: int = 6
    """Layer whose hidden states BERTScore compares (MiniLM-L6 has 6)."""
    bert_batch_size: int = 64
    """Sentence pairs scored per BERTScore batch."""
    step_threshold: float = 0.85
    """Cosine similarity from which a generated step counts as matching a reference step (see metrics.py)."""
    step_same_numbers: bool = True
    """A semantic step match also needs the same numbers as the reference step (embeddings ignore arithmetic)."""
    n_boot: int = 1000
    """Bootstrap resamples for Spearman confidence intervals."""

    def __post_init__(self) -> None:
        check_range("metrics.bert_layers", self.bert_layers, low=1)
        check_range("metrics.bert_batch_size", self.bert_batch_size, low=1)
        check_range("metrics.step_threshold", self.step_threshold, low=-1.0, high=1.0)
        check_range("metrics.n_boot", self.n_boot, low=10)


@dataclass
class ConsistencyConfig:
    context_turns: int = 2
    """Utterances of history before the response that the classifier sees."""
    max_context_chars: int = 1000
    """Keep only the last this many characters of the rendered context (the recent part matters)."""
    turns_per_dialogue: int = 2
    """Agent turns sampled from each dialogue as positives."""
    max_dialogues: int | None = None
    """Use at most this many dialogues (None: all)."""
    val_fraction: float = 0.2
    """Share of dialogues held out to measure accuracy."""
    calibration_fraction: float = 0.25
    """Share of the training dialogues kept from the projections to fit the probability calibration."""
    projection_dim: int = 384
    """Output size of the context and response projections (384 = MiniLM's size; they start as identity)."""
    epochs: int = 30
    """Passes of contrastive training over the positive pairs."""
    batch_size: int = 128
    """Positive pairs per contrastive batch; every other response in the batch is a negative."""
    lr: float = 1e-3
    """AdamW learning rate of the projections."""
    weight_decay: float = 1e-2
    """AdamW weight decay of the projections."""
    threshold: float = 0.5
    """Probability from which a response is accepted as on-topic."""

    def __post_init__(self) -> None:
        check_range("consistency.context_turns", self.context_turns, low=1)
        check_range("consistency.max_context_chars", self.max_context_chars, low=50)
        check_range("consistency.turns_per_dialogue", self.turns_per_dialogue, low=1)
        check_range("consistency.max_dialogues", self.max_dialogues, low=8)
        check_range("consistency.val_fraction", self.val_fraction, low=0.05, high=0.5)
        check_range("consistency.calibration_fraction", self.calibration_fraction, low=0.05, high=0.5)
        check_range("consistency.projection_dim", self.projection_dim, low=1)
        check_range("consistency.epochs", self.epochs, low=1)
        check_range("consistency.batch_size", self.batch_size, low=2)
        check_range("consistency.lr", self.lr, low=0.0, low_open=True)
        check_range("consistency.weight_decay", self.weight_decay, low=0.0)
        check_range("consistency.threshold", self.threshold, low=0.0, high=1.0)


@dataclass
class RewardModelConfig:
    hidden: int = 64
    """Hidden units of the MLP head over pair features; 0 makes the head linear."""
    epochs: int = 30
    """Full passes over the (precomputed) features."""
    batch_size: int = 256
    """Examples or pairs per optimiser step."""
    lr: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 1e-2
    """AdamW weight decay (the heads are small and the data sets smaller)."""
    dropout: float = 0.1
    """Dropout on the hidden layer."""
    val_fraction: float = 0.2
    """Share of groups (dialogues, problems) held out to report accuracy."""
    context_turns: int = 4
    """Utterances of history rendered into the context text."""
    max_context_chars: int = 1000
    """Keep only the last this many characters of the rendered context."""

    def __post_init__(self) -> None:
        check_range("reward_model.hidden", self.hidden, low=0)
        check_range("reward_model.epochs", self.epochs, low=1)
        check_range("reward_model.batch_size", self.batch_size, low=1)
        check_range("reward_model.lr", self.lr, low=0.0, low_open=True)
        check_range("reward_model.weight_decay", self.weight_decay, low=0.0)
        check_range("reward_model.dropout", self.dropout, low=0.0, high=0.9)
        check_range("reward_model.val_fraction", self.val_fraction, low=0.0, high=0.5)
        check_range("reward_model.context_turns", self.context_turns, low=1)
        check_range("reward_model.max_context_chars", self.max_context_chars, low=50)
