"""Models: one loader for causal and seq2seq LMs, plus named offline presets."""

from cagsr.models.config import ModelConfig
from cagsr.models.registry import PRESETS, LoadedModel, load_model

__all__ = ["PRESETS", "LoadedModel", "ModelConfig", "load_model"]
