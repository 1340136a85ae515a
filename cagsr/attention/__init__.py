"""Attention over the history: exact abar rows captured inside one teacher-forced forward pass."""

from cagsr.attention.batch import TeacherForcedBatch, model_inputs
from cagsr.attention.capture import CaptureResult, forward_with_capture
from cagsr.attention.forward import forward_no_capture
from cagsr.attention.packed import PackedBatch, SequenceView, pack_sequences

__all__ = [
    "CaptureResult",
    "PackedBatch",
    "SequenceView",
    "TeacherForcedBatch",
    "forward_no_capture",
    "forward_with_capture",
    "model_inputs",
    "pack_sequences",
]
