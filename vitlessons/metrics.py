"""Accuracy and the shape bias of Geirhos et al. (2019), computed the way model-vs-human does."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

Labels = Tensor | Sequence[int]


@dataclass(frozen=True)
class ShapeBias:
    """One model's shape bias on cue-conflict images, overall and per shape category."""

    overall: float
    per_category: dict[str, float]
    shape_decisions: int
    texture_decisions: int
    n_conflict: int


def _as_labels(values: Labels, name: str) -> Tensor:
    """Turn class indices into a 1-D long tensor so tensors and plain lists are treated alike."""
    tensor = values if isinstance(values, Tensor) else torch.as_tensor(list(values))
    if tensor.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D sequence of class indices, got shape {tuple(tensor.shape)}"
        )
    if tensor.numel() and (tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool):
        raise TypeError(
            f"{name} must hold integer class indices, got dtype {tensor.dtype} "
            "(for probabilities take .argmax(dim=1) first)"
        )
    return tensor.detach().to("cpu", torch.long)


def _check_same_length(**named: Tensor) -> int:
    """All label vectors describe the same images, so their lengths must agree."""
    lengths = {name: len(t) for name, t in named.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"labels of mismatched length: {described}")
    return next(iter(lengths.values()))


def _check_range(labels: Tensor, name: str, num_classes: int) -> None:
    """An index outside the class list means the wrong label space was passed."""
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{name} must be class indices in 0..{num_classes - 1} ({num_classes} class_names), "
            f"got values from {labels.min().item()} to {labels.max().item()}"
        )


def accuracy(predictions: Labels, labels: Labels) -> float:
    """Fraction of predictions equal to the label."""
    predictions = _as_labels(predictions, "predictions")
    labels = _as_labels(labels, "labels")
    n = _check_same_length(predictions=predictions, labels=labels)
    if n == 0:
        raise ValueError("accuracy of zero images is undefined: got empty predictions and labels")
    return (predictions == labels).float().mean().item()


def _ratio(shape_hits: int, texture_hits: int) -> float:
    """Shape fraction among cue decisions; nan when no decision followed either cue."""
    total = shape_hits + texture_hits
    return shape_hits / total if total else math.nan


def _check_class_names(class_names: Sequence[str]) -> tuple[str, ...]:
    """Names label the per-category result, so they must exist and be unique."""
    names = tuple(class_names)
    if not names:
        raise ValueError("class_names must name at least one class, got an empty sequence")
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be unique, got {names}")
    return names


def shape_bias(
    predictions: Labels,
    shape_labels: Labels,
    texture_labels: Labels,
    class_names: Sequence[str],
) -> ShapeBias:
    """Shape decisions / (shape + texture decisions) over cue-conflict images, as in model-vs-human.

    Images whose shape and texture class agree carry no conflict and are dropped; decisions
    that match neither cue are ignored. Per-category values group images by their *shape*
    class (model-vs-human groups by its ``category`` column, which is the shape category);
    a category without any shape or texture decision gets nan.
    """
    names = _check_class_names(class_names)
    predictions = _as_labels(predictions, "predictions")
    shape_labels = _as_labels(shape_labels, "shape_labels")
    texture_labels = _as_labels(texture_labels, "texture_labels")
    _check_same_length(
        predictions=predictions, shape_labels=shape_labels, texture_labels=texture_labels
    )
    for tensor, name in ((predictions, "predictions"), (shape_labels, "shape_labels"),
                         (texture_labels, "texture_labels")):
        _check_range(tensor, name, len(names))

    conflict = shape_labels != texture_labels
    shape_hit = conflict & (predictions == shape_labels)
    texture_hit = conflict & (predictions == texture_labels)

    per_category = {}
    for index, name in enumerate(names):
        in_class = shape_labels == index
        per_category[name] = _ratio(
            int((shape_hit & in_class).sum()), int((texture_hit & in_class).sum())
        )
    shape_decisions, texture_decisions = int(shape_hit.sum()), int(texture_hit.sum())
    return ShapeBias(
        overall=_ratio(shape_decisions, texture_decisions),
        per_category=per_category,
        shape_decisions=shape_decisions,
        texture_decisions=texture_decisions,
        n_conflict=int(conflict.sum()),
    )
