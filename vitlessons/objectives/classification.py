"""Supervised classification: cross-entropy against the label, with training accuracy as its log."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from vitlessons.objectives.base import Objective, StepOutput


class Classification(Objective):
    """Cross-entropy on (images, labels) batches, optionally label-smoothed."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def step(self, model: nn.Module, batch: tuple[Tensor, ...]) -> StepOutput:
        images, labels = batch
        logits = model(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        return StepOutput(loss, {"loss": loss.detach(), "accuracy": (logits.argmax(-1) == labels).float().mean()})

    def config(self) -> dict[str, Any]:
        return {**super().config(), "label_smoothing": self.label_smoothing}
