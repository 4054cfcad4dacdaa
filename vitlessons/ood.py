"""Is this input like the training data? Anomaly scores for out-of-distribution detection, scored by AUROC.

The baseline (Hendrycks & Gimpel, ICLR 2017) is the maximum softmax probability: a network tends to be less
confident on inputs unlike its training data. Hendrycks et al. (NeurIPS 2019, ss-ood) add what a rotation head
knows: an input whose turns the head cannot tell apart is unlike the training data too. Their score is the KL
divergence from the uniform distribution to the class softmax, which is low for a confident network, turned into
an anomaly score by its sign, plus the rotation loss summed over the four turns. Every score here is higher for
inputs that look more anomalous, as ``metrics.auroc`` expects.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from vitlessons.models.wrapper import Classifier
from vitlessons.objectives.rotation import TURNS, Rotation
from vitlessons.tensors import check_images


@torch.no_grad()
def max_softmax_anomaly(model: Classifier, images: Tensor) -> Tensor:
    """(B,) minus the maximum softmax probability: the baseline anomaly score."""
    return -model.predict(images).max(-1).values


@torch.no_grad()
def turn_scores(model: Classifier, rotation: Rotation, images: Tensor,
                score: Callable[[Tensor, Tensor, Tensor], Tensor], batch_size: int = 64) -> Tensor:
    """(B,) ``score(rotation logits, turns, class logits)`` of each batch, in eval mode: what each image's turns tell.

    The rotation logits and turns cover the batch's four quarter turns (turn-major), the class logits its upright copies.
    """
    check_images(images)
    if rotation.head is None:
        raise ValueError("the rotation objective has no head yet: train or restore it with its model first")
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([score(*rotation.rotation_logits(model, images[start:start + batch_size].to(device))).cpu()
                      for start in range(0, len(images), batch_size)])


def rotation_anomaly(model: Classifier, rotation: Rotation, images: Tensor, batch_size: int = 64) -> Tensor:
    """(B,) ss-ood's score: the rotation head's loss summed over the four turns, minus KL(uniform || class softmax)."""
    def score(logits: Tensor, turns: Tensor, class_logits: Tensor) -> Tensor:
        turn_loss = F.cross_entropy(logits, turns, reduction="none").reshape(TURNS, -1).sum(0)
        log_probabilities = F.log_softmax(class_logits, dim=-1)
        uniform_kl = -log_probabilities.mean(-1) - math.log(log_probabilities.shape[-1])  # KL(uniform || softmax)
        return turn_loss - uniform_kl

    return turn_scores(model, rotation, images, score, batch_size)
