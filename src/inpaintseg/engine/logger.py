"""Training metrics: JSON lines (one object per logged step) and TensorBoard scalars and images."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from inpaintseg.errors import DataError


class MetricsLogger:
    def __init__(self, run_dir: str | Path, name: str, tensorboard: bool = True, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(run_dir) / f"{name}_metrics.jsonl"
        self.writer = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard" / name))
            except ImportError:  # tensorboard is a dependency, but keep training if it is broken
                self.writer = None

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        clean = {k: (float(v) if math.isfinite(float(v)) else None) for k, v in values.items()}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **clean}) + "\n")
        if self.writer is not None:
            for k, v in clean.items():
                if v is not None:
                    self.writer.add_scalar(k, v, step)

    def images(self, step: int, tag: str, grid: torch.Tensor) -> None:
        """``grid`` (3,H,W) in [0,1]."""
        if self.enabled and self.writer is not None:
            self.writer.add_image(tag, grid.clamp(0, 1), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: str | Path, lenient: bool = False) -> tuple[list[dict], int]:
    """The JSON objects of a ``*_metrics.jsonl`` file in file order, and how many lines were skipped.

    Strict (default): a line that is not a JSON object is a DataError naming the file and the line. ``lenient``:
    such lines are skipped and counted (a killed run can leave a half-written last line)."""
    path = Path(path)
    rows, skipped = [], 0
    for k, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            row, problem = None, f"line {k} is not JSON ({e.msg})"
        else:
            problem = f"line {k} is not a JSON object"
        if isinstance(row, dict):
            rows.append(row)
        elif lenient:
            skipped += 1
        else:
            raise DataError(path, problem)
    return rows, skipped
