"""Rotation prediction: which of four quarter turns was an image given? (Gidaris et al., ICLR 2018)

Every image of a batch goes in four times, turned by 0, 90, 180 and 270 degrees, and a linear head on the model's
pooled features names the turn. Alone (``weight=None``) that is a pretext task that needs no labels. Beside the
labels (``weight=0.5``) it is Hendrycks et al.'s auxiliary loss (NeurIPS 2019, ss-ood):
CE(class | upright image) + weight · CE(turn | turned images), the class read from the upright copies.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vitlessons.objectives.base import Objective, StepOutput

TURNS = 4


def quarter_turns(images: Tensor) -> tuple[Tensor, Tensor]:
    """(4B, C, H, W) images, the whole batch upright, then turned 90, 180 and 270 degrees; and (4B,) turn labels."""
    turned = torch.cat([torch.rot90(images, k, dims=(-2, -1)) for k in range(TURNS)])
    return turned, torch.arange(TURNS, device=images.device).repeat_interleave(len(images))


class Rotation(Objective):
    """A four-way rotation head on the model's features: a pretext task, or an auxiliary loss beside the labels."""

    def __init__(self, weight: float | None = None, seed: int = 0):
        super().__init__()
        if weight is not None and weight <= 0:
            raise ValueError(f"weight must be positive, or None for the pretext task alone, got {weight}")
        self.weight, self.seed = weight, seed
        self.head: nn.Linear | None = None

    def setup(self, model: nn.Module) -> None:
        if not hasattr(model, "trunk"):  # duck-typed: models import the training loop
            raise TypeError(f"rotation prediction trains a course model (vitlessons.models.Model), got {type(model).__name__}")
        with torch.random.fork_rng(devices=[]):  # the head's initial weights depend on the seed only
            torch.manual_seed(self.seed)
            self.head = nn.Linear(model.trunk.num_features, TURNS).to(next(model.parameters()).device)

    def rotation_logits(self, model: nn.Module, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The head's logits for every turned copy, the turn labels, and the class logits of the upright copies.

        One pass through the network serves both heads: the upright copies are the first quarter of the batch.
        """
        turned, turns = quarter_turns(images)
        features = model._features(turned)
        return self.head(features), turns, model.trunk.get_classifier()(features[:len(images)])

    def step(self, model: nn.Module, batch: tuple[Tensor, ...]) -> StepOutput:
        images, labels = batch
        logits, turns, class_logits = self.rotation_logits(model, images)
        rotation_loss = F.cross_entropy(logits, turns)
        logs = {"rotation loss": rotation_loss.detach(),
                "rotation accuracy": (logits.argmax(-1) == turns).float().mean()}
        if self.weight is None:
            return StepOutput(rotation_loss, {"loss": rotation_loss.detach(), **logs})
        loss = F.cross_entropy(class_logits, labels) + self.weight * rotation_loss
        return StepOutput(loss, {"loss": loss.detach(), **logs,
                                 "accuracy": (class_logits.argmax(-1) == labels).float().mean()})

    def config(self) -> dict[str, Any]:
        return {**super().config(), "weight": self.weight}
