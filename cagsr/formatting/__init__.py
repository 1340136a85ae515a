"""Formatting: dialogue histories to model input, with per-token turn and speaker provenance."""

from cagsr.formatting.batching import collate_pairs, pad_rows
from cagsr.formatting.history import FormattedHistory, format_history, format_response

__all__ = ["FormattedHistory", "collate_pairs", "format_history", "format_response", "pad_rows"]
