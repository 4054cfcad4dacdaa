"""Adversarial examples under an L-infinity budget: FGSM, PGD, and an untargeted attack on features.

Every attack here looks for a perturbation delta, no larger than eps in any pixel, that raises a loss:

- FGSM, the fast gradient sign method (Goodfellow, Shlens and Szegedy, ICLR 2015, "Explaining and Harnessing
  Adversarial Examples"): if a network is close to linear in its input, one step of size eps along the sign of
  the loss gradient is the most damaging move the budget allows. Here it is literally PGD with one step of
  size eps and no random start.
- PGD, projected gradient descent (Madry, Makelov, Schmidt, Tsipras and Vladu, ICLR 2018, "Towards Deep
  Learning Models Resistant to Adversarial Attacks"): FGSM repeated with smaller steps, each followed by a
  projection back into the allowed set, from a random point of the eps-ball. Madry et al. argue that this
  first-order search is about as strong as first-order attacks get, which is why robustness is measured with it.
- ``feature_attack``: the same search on a network without a head, pushing the features of an image away
  from its clean features, so a backbone can be attacked without labels.

The allowed set is the intersection of the eps-ball around each image and the valid pixel range [0, 1]; both
are boxes, so clamping to their intersection is the exact projection. Images are course images (float
(B, 3, H, W) in [0, 1]); the model normalises them itself (``vitlessons.models.Classifier`` does), so the
budget is in pixel units: eps = 4 / 255 means four grey levels of an 8-bit image.

The network is put in eval mode for the attack (dropout off, batch-norm statistics frozen and untouched) and
its modes are restored afterwards. Gradients are taken with respect to the input only, so the network's
parameters never accumulate a ``.grad``. The random start is drawn on the CPU from a generator seeded with
``seed`` and then moved, so one seed gives the same start on every device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vitlessons.config import generator as seeded_generator
from vitlessons.metrics import Labels
from vitlessons.metrics import accuracy as label_accuracy
from vitlessons.tensors import check_images

LossFn = Callable[[Tensor], Tensor]  # images (B, 3, H, W) -> one loss per image (B,)


@dataclass(frozen=True)
class AttackResult:
    """What an attack found: the adversarial images, the loss at every step, and the decisions before and after.

    ``losses[0]`` is the loss at the start point (the clean images, or the random start) and ``losses[k]`` the
    loss after step k, per image: averaging over a subset (say, the images the model got right) is the caller's
    choice. Predictions are None for a feature attack given no classifier to decide with.
    """

    images: Tensor  # adversarial images (B, 3, H, W) in [0, 1], detached
    clean_images: Tensor  # the images attacked, on the same device
    losses: Tensor  # (steps + 1, B)
    clean_predictions: Tensor | None  # (B,) class indices
    predictions: Tensor | None  # (B,) class indices on the adversarial images

    @property
    def delta(self) -> Tensor:
        """The perturbation that was added, within [-eps, eps] in every pixel."""
        return self.images - self.clean_images

    @property
    def flipped(self) -> Tensor | None:
        """Which images the attack changed the decision of (bool (B,)), or None without predictions."""
        if self.predictions is None or self.clean_predictions is None:
            return None
        return self.predictions != self.clean_predictions

    @property
    def success_rate(self) -> float:
        """The fraction of images whose decision flipped, the headline number of an untargeted attack."""
        flipped = self.flipped
        if flipped is None:
            raise ValueError("this attack made no decisions; pass a classifier to feature_attack to get them")
        return flipped.float().mean().item()

    def accuracy(self, labels: Labels) -> float:
        """Accuracy on the adversarial images (robust accuracy), against the true labels."""
        if self.predictions is None:
            raise ValueError("this attack made no decisions; pass a classifier to feature_attack to get them")
        return label_accuracy(self.predictions, labels)


def fgsm(model: nn.Module, images: Tensor, labels: Tensor | None = None, *, eps: float) -> AttackResult:
    """One signed-gradient step of size eps (Goodfellow et al., 2015): PGD with one step and no random start.

    ``model`` maps images in [0, 1] to logits; the loss is cross-entropy against ``labels``, or against the
    model's own clean predictions when labels is None (so "flipped" and "wrong" mean the same).
    """
    _check_budget(eps)
    return _class_attack(model, images, labels, eps, step_size=eps, steps=1, random_start=False, seed=0)


def pgd(model: nn.Module, images: Tensor, labels: Tensor | None = None, *, eps: float,
        step_size: float | None = None, steps: int = 10, random_start: bool = True, seed: int = 0) -> AttackResult:
    """Projected signed-gradient ascent on cross-entropy (Madry et al., 2018), the standard robustness test.

    ``step_size`` defaults to 2.5 * eps / steps, a common choice that lets the search reach the edge of the
    ball from anywhere in it and still move along the edge. Labels as in ``fgsm``; ``seed`` fixes the random start.
    """
    step_size = _check_steps(eps, step_size, steps)
    return _class_attack(model, images, labels, eps, step_size, steps, random_start, seed)


def feature_attack(model: nn.Module, images: Tensor, *, eps: float, step_size: float | None = None, steps: int = 10,
                   seed: int = 0, classifier: Callable[[Tensor], Tensor] | None = None) -> AttackResult:
    """Push each image's features away from its clean features (untargeted), by PGD on 1 - cosine similarity.

    ``model`` maps images in [0, 1] to features (B, ...), a ``Backbone`` for instance; features of any shape are
    flattened per image. The distance is 1 - cosine similarity rather than the squared L2 distance because it
    ignores the features' scale, which differs by orders of magnitude between networks: it lies in [0, 2] for
    every model, so loss curves of a ViT and a CNN share one axis. The start is always random: at the clean
    point the distance is at its minimum and its gradient is zero, so a signed step from there would not move.

    Without labels there is no decision to flip: ``predictions`` and ``flipped`` are None unless ``classifier``
    (images to logits, such as the classifier whose backbone is attacked) is given to decide with.
    """
    step_size = _check_steps(eps, step_size, steps)
    images = _on_model_device(model, check_images(images))
    with _evaluating(model, classifier):
        with torch.no_grad():
            clean = model(images).flatten(1)

        def distance(candidates: Tensor) -> Tensor:
            return 1 - F.cosine_similarity(model(candidates).flatten(1), clean, dim=1)

        adversarial, losses = _signed_ascent(distance, images, eps, step_size, steps, True, seed)
        decided = classifier is not None
        clean_predictions = _decide(classifier, images) if decided else None
        predictions = _decide(classifier, adversarial) if decided else None
    return AttackResult(adversarial, images, losses, clean_predictions, predictions)


def _class_attack(model: nn.Module, images: Tensor, labels: Tensor | None, eps: float, step_size: float,
                  steps: int, random_start: bool, seed: int) -> AttackResult:
    """Cross-entropy ascent shared by FGSM and PGD, so FGSM is PGD by construction."""
    images = _on_model_device(model, check_images(images))
    with _evaluating(model):
        with torch.no_grad():
            clean_logits = model(images)
        clean_predictions = clean_logits.argmax(-1)
        labels = clean_predictions if labels is None else _check_labels(labels, images, clean_logits.shape[-1])

        def cross_entropy(candidates: Tensor) -> Tensor:
            return F.cross_entropy(model(candidates), labels, reduction="none")

        adversarial, losses = _signed_ascent(cross_entropy, images, eps, step_size, steps, random_start, seed)
        predictions = _decide(model, adversarial)
    return AttackResult(adversarial, images, losses, clean_predictions, predictions)


def _signed_ascent(loss_fn: LossFn, images: Tensor, eps: float, step_size: float, steps: int,
                   random_start: bool, seed: int) -> tuple[Tensor, Tensor]:
    """The one loop of every attack: signed gradient steps on a per-image loss, each projected into the allowed set.

    Returns the final images (detached) and the loss per image at the start and after every step, (steps + 1, B).
    """
    low, high = (images - eps).clamp(min=0), (images + eps).clamp(max=1)  # the eps-ball within [0, 1]
    current = images.detach().clone()
    if random_start:
        noise = torch.rand(images.shape, generator=seeded_generator(seed), dtype=images.dtype)
        current = torch.clamp(current + (2 * noise.to(images.device) - 1) * eps, low, high)
    losses = []
    with torch.enable_grad():
        for _ in range(steps):
            current.requires_grad_(True)
            loss = loss_fn(current)
            (gradient,) = torch.autograd.grad(loss.sum(), current)  # per image, as the images are independent
            losses.append(loss.detach())
            current = torch.clamp(current.detach() + step_size * gradient.sign(), low, high)
    with torch.no_grad():
        losses.append(loss_fn(current))
    return current, torch.stack(losses)


@contextmanager
def _evaluating(*models: object) -> Iterator[None]:
    """Eval mode while attacking (dropout off, batch norm untouched), every submodule's own mode restored after."""
    modules = [model for model in models if isinstance(model, nn.Module)]
    modes = [(module, module.training) for model in modules for module in model.modules()]
    try:
        for model in modules:
            model.eval()
        yield
    finally:
        for module, training in modes:
            module.training = training


@torch.no_grad()
def _decide(classifier: Callable[[Tensor], Tensor], images: Tensor) -> Tensor:
    """The class each image is given: the arg-max of the logits."""
    return classifier(images).argmax(-1)


def _on_model_device(model: nn.Module, images: Tensor) -> Tensor:
    """The images, detached, on the device of the model's parameters (or where they are, for a model without any)."""
    parameter = next(model.parameters(), None) if isinstance(model, nn.Module) else None
    return images.detach() if parameter is None else images.detach().to(parameter.device)


def _check_budget(eps: float) -> None:
    """A budget is a finite, non-negative size in pixel units."""
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0 (pixel units, e.g. 4 / 255), got {eps!r}")


def _check_steps(eps: float, step_size: float | None, steps: int) -> float:
    """Validate a PGD schedule and fill in the default step size, 2.5 * eps / steps."""
    _check_budget(eps)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
    if step_size is None:
        return 2.5 * eps / steps
    if not isinstance(step_size, (int, float)) or not math.isfinite(step_size) or step_size <= 0:
        raise ValueError(f"step_size must be a finite number > 0, got {step_size!r}")
    return float(step_size)


def _check_labels(labels: Tensor, images: Tensor, classes: int) -> Tensor:
    """Labels are class indices, one per image, within the model's classes (checked once, before any step)."""
    labels = torch.as_tensor(labels)
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), one per image, got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"labels must lie in 0..{classes - 1} for a model with {classes} classes, "
                         f"got values from {labels.min().item()} to {labels.max().item()}")
    return labels.to(images.device, torch.long)
