"""Training metrics: a loss meter that survives resume, and the metrics JSON every training CLI writes."""

from __future__ import annotations

from pathlib import Path

from whatnext.runtime.atomic import write_json


class EpochMeter:
    """Clip-weighted mean loss and throughput over one epoch; its state goes into the resume checkpoint."""

    def __init__(self, total: float = 0.0, clips: int = 0, seconds: float = 0.0):
        self.total = total  # sum over steps of (mean step loss x clips in the step)
        self.clips = clips
        self.seconds = seconds  # wall time of the steps, data loading included

    def add(self, loss: float, clips: int, seconds: float) -> None:
        """Add one step: its mean loss over ``clips`` clips, taking ``seconds``."""
        self.total += loss * clips
        self.clips += clips
        self.seconds += seconds

    def mean(self) -> float:
        return self.total / self.clips if self.clips else float("nan")

    def clips_per_second(self) -> float:
        return self.clips / self.seconds if self.seconds > 0 else float("nan")

    def state_dict(self) -> dict:
        return {"total": self.total, "clips": self.clips, "seconds": self.seconds}

    @classmethod
    def from_state(cls, state: dict) -> "EpochMeter":
        return cls(state["total"], state["clips"], state["seconds"])


def write_metrics(path: str | Path, epochs: list[dict], **summary) -> None:
    """Write ``{"epochs": [per-epoch records], **summary}`` as JSON, atomically.

    Each record holds at least ``epoch`` (0-based), ``loss`` (clip-weighted mean training
    loss), ``lr`` (learning rate after the epoch's last step) and ``clips_per_s``.
    """
    write_json(path, {"epochs": epochs, **summary})
