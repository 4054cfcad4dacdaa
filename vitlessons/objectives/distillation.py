"""Shape-token distillation (Naseer et al., NeurIPS 2021, after DeiT's token distillation, Touvron et al., 2021).

A ViT with two output tokens learns two things at once: its class token the labels (cross-entropy), its shape
token the output distribution of a shape-biased teacher (KL divergence at temperature T, scaled by T² so its
gradients keep their size). ``weight`` splits the loss between them: (1 - weight) · CE + weight · T² · KL.
The teacher is frozen and stays in eval mode, so its batch-norm statistics never move.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from timm.models.deit import VisionTransformerDistilled
from torch import Tensor, nn

from vitlessons.objectives.base import Objective, StepOutput

if TYPE_CHECKING:  # the models package imports the training loop, which imports the objectives
    from vitlessons.models.wrapper import Classifier


def two_token_logits(net: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """The class token's and the shape token's logits for preprocessed images, from one pass through the blocks."""
    if not isinstance(net, VisionTransformerDistilled):
        raise TypeError(f"needs a ViT with a shape token (lab_vit with shape_token=True), got {type(net).__name__}")
    tokens = net.forward_features(x)
    return net.head(tokens[:, 0]), net.head_dist(tokens[:, 1])


class ShapeDistillation(Objective):
    """Labels for the class token, a frozen teacher's distribution for the shape token."""

    def __init__(self, teacher: Classifier, teacher_key: str, weight: float = 0.5, temperature: float = 1.0):
        super().__init__()
        if not 0 <= weight <= 1 or temperature <= 0:
            raise ValueError(f"need 0 <= weight <= 1 and temperature > 0, got {weight} and {temperature}")
        self.teacher, self.teacher_key = teacher, teacher_key
        self.weight, self.temperature = weight, temperature
        self.teacher.requires_grad_(False)
        self.teacher.eval()

    def train(self, mode: bool = True) -> ShapeDistillation:
        """Train or evaluate the objective's own parts; the teacher always evaluates."""
        super().train(mode)
        self.teacher.eval()
        return self

    def step(self, model: nn.Module, batch: tuple[Tensor, ...]) -> StepOutput:
        images, labels = batch
        class_logits, shape_logits = two_token_logits(model.net, model.preprocessing(images))
        with torch.no_grad():
            target = F.log_softmax(self.teacher(images) / self.temperature, dim=-1)
        guess = F.log_softmax(shape_logits / self.temperature, dim=-1)
        kl = F.kl_div(guess, target, reduction="batchmean", log_target=True)
        cross_entropy = F.cross_entropy(class_logits, labels)
        loss = (1 - self.weight) * cross_entropy + self.weight * self.temperature ** 2 * kl
        return StepOutput(loss, {
            "loss": loss.detach(), "KL": kl.detach(),
            "accuracy": (class_logits.argmax(-1) == labels).float().mean(),
            "shape token accuracy": (shape_logits.argmax(-1) == labels).float().mean(),
            "agreement": (shape_logits.argmax(-1) == target.argmax(-1)).float().mean(),
        })

    def config(self) -> dict[str, Any]:
        return {**super().config(), "teacher": self.teacher_key, "weight": self.weight,
                "temperature": self.temperature}
