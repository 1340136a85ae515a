"""Data: dialogue and math records, readers with line-accurate validation, generated samples."""

from cagsr.data.config import DataConfig
from cagsr.data.schema import Dialogue, MathProblem, Utterance
from cagsr.data.sources import load_records

__all__ = ["DataConfig", "Dialogue", "MathProblem", "Utterance", "load_records"]
