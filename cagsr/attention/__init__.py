"""Attention over the history: exact abar rows captured inside one teacher-forced forward pass."""

from cagsr.attention.batch import TeacherForcedBatch, model_inputs
from cagsr.attention.capture import CaptureResult, forward_no_capture, forward_with_capture

__all__ = [
    "CaptureResult",
    "TeacherForcedBatch",
    "forward_no_capture",
    "forward_with_capture",
    "model_inputs",
]
