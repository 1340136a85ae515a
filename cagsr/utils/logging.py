"""Metrics to JSON Lines and TensorBoard (and optionally W&B), one `log(step, metrics)` call.

Metric names carry their phase as a prefix: reward/, loss/, policy/, value/, time/.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class MetricLogger:
    """Appends {"step": s, **metrics} to metrics.jsonl and mirrors scalars to TensorBoard."""

    def __init__(
        self,
        folder: Path,
        enabled: bool = True,
        wandb: bool = False,
        config: dict | None = None,
        resume_step: int | None = None,
    ):
        """resume_step: the checkpoint's step when resuming; TensorBoard hides what a killed run
        logged after it, so every step shows once (metrics.jsonl is trimmed the same way)."""
        self.folder, self.enabled = folder, enabled
        self._tb = self._wandb = None
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        purge = None if resume_step is None else resume_step + 1
        self._tb = SummaryWriter(log_dir=str(folder / "tensorboard"), purge_step=purge)
        self._file = (folder / "metrics.jsonl").open("a", encoding="utf-8")
        if wandb:
            import wandb as wb

            self._wandb = wb.init(project="cagsr", dir=str(folder), config=config or {})

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {k: (float(v) if hasattr(v, "__float__") else v) for k, v in metrics.items()}
        self._file.write(json.dumps({"step": step, **clean}) + "\n")
        self._file.flush()
        for key, value in clean.items():
            if isinstance(value, float) and math.isfinite(value):
                self._tb.add_scalar(key, value, step)
        if self._wandb is not None:
            self._wandb.log(clean, step=step)

    def close(self) -> None:
        if self.enabled:
            self._tb.close()
            self._file.close()
            if self._wandb is not None:
                self._wandb.finish()


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    path = Path(folder) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
