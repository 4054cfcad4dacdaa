"""Accuracy and the shape bias of Geirhos et al. (2019), computed the way model-vs-human does, ImageNet-C's mean
corruption error (Hendrycks & Dietterich, 2019), and linear CKA between two layers' representations (Kornblith et
al., 2019)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real

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


# ImageNet-C's mean corruption error (Hendrycks & Dietterich, ICLR 2019). AlexNet's top-1 errors per corruption, each
# already averaged over the five severities, as google-research/augmix's imagenet.py lists them.
ALEXNET_ERRORS: dict[str, float] = {
    "gaussian_noise": 0.886428, "shot_noise": 0.894468, "impulse_noise": 0.922640,
    "defocus_blur": 0.819880, "glass_blur": 0.826268, "motion_blur": 0.785948, "zoom_blur": 0.798360,
    "snow": 0.866816, "frost": 0.826572, "fog": 0.819324,
    "brightness": 0.564592, "contrast": 0.853204, "elastic_transform": 0.646056, "pixelate": 0.717840,
    "jpeg_compression": 0.606500,
}
ALEXNET_CLEAN_ERROR = 0.4345  # AlexNet's clean top-1 error (the paper's Table 1 rounds it to 43.5%), for relative mCE
RESNET50_MCE = 76.7  # % (hendrycks/robustness README), for context
RESNET50_CLEAN_ERROR = 23.85  # %
NUM_SEVERITIES = 5

Baseline = Mapping[str, float | Sequence[float]]


def _error(value: float, name: str) -> float:
    """An error rate is a fraction of images; a percentage or a NaN here means the wrong numbers were passed."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be an error rate in [0, 1], got {value}")
    return value


def _severity_errors(values: Sequence[float], name: str) -> list[float]:
    """The per-severity errors of one corruption: ImageNet-C's five, each in [0, 1]."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != NUM_SEVERITIES:
        raise ValueError(f"{name} must be {NUM_SEVERITIES} per-severity errors, got {values!r}")
    return [_error(v, f"{name}[{i}]") for i, v in enumerate(values)]


def _mean_error(value: float | Sequence[float], name: str) -> float:
    """A baseline's error averaged over severities: given as that mean (AlexNet's published numbers) or per severity."""
    if isinstance(value, Real):
        return _error(value, name)
    return sum(_severity_errors(value, name)) / NUM_SEVERITIES


def _shared_corruptions(errors: Mapping[str, Sequence[float]], baseline: Baseline) -> list[str]:
    """The baseline's corruptions, every one of which the model must have been measured on."""
    if not baseline:
        raise ValueError("the baseline names no corruption")
    missing = [c for c in baseline if c not in errors]
    if missing:
        raise ValueError(f"errors lack {len(missing)} of the baseline's corruptions: {', '.join(missing)} "
                         f"(got {', '.join(errors) or 'none'})")
    return list(baseline)


def _ce_ratio(numerator: float, denominator: float, name: str) -> float:
    """A corruption error's division, refusing a baseline that makes it meaningless."""
    if denominator <= 0:
        raise ValueError(f"the baseline's error for {name} is {denominator:g}; a corruption error divides by it, "
                         "so it must be positive")
    return numerator / denominator


def corruption_errors(errors: Mapping[str, Sequence[float]], baseline: Baseline = ALEXNET_ERRORS) -> dict[str, float]:
    """CE_c in %: the model's error on corruption c summed over the five severities, over the baseline's (ImageNet-C's
    normalisation, so that easy and hard corruptions weigh alike).

    ``errors`` maps each corruption to its five per-severity errors in [0, 1]; corruptions not in the baseline are
    ignored. ``baseline`` maps each corruption to its error averaged over severities (as ``ALEXNET_ERRORS``) or to
    its five per-severity errors (a baseline model you measured yourself).
    """
    return {c: 100 * _ce_ratio(sum(_severity_errors(errors[c], f"errors[{c!r}]")) / NUM_SEVERITIES,
                            _mean_error(baseline[c], f"baseline[{c!r}]"), c)
            for c in _shared_corruptions(errors, baseline)}


def mce(errors: Mapping[str, Sequence[float]], baseline: Baseline = ALEXNET_ERRORS) -> float:
    """Mean corruption error in %: the mean CE over the baseline's corruptions (AlexNet scores 100)."""
    ces = corruption_errors(errors, baseline)
    return sum(ces.values()) / len(ces)


def relative_mce(errors: Mapping[str, Sequence[float]], clean_error: float, baseline: Baseline = ALEXNET_ERRORS,
                 baseline_clean: float = ALEXNET_CLEAN_ERROR) -> float:
    """Relative mCE in %: the mean over corruptions of sum_s (E_s,c - E_clean) / the baseline's same sum.

    It measures how much a model degrades under corruption rather than how wrong it is, so a model that is merely
    more accurate on clean images does not score better (Hendrycks & Dietterich, 2019, section 4).
    """
    clean, base_clean = _error(clean_error, "clean_error"), _error(baseline_clean, "baseline_clean")
    relative = [_ce_ratio(sum(_severity_errors(errors[c], f"errors[{c!r}]")) / NUM_SEVERITIES - clean,
                       _mean_error(baseline[c], f"baseline[{c!r}]") - base_clean, f"{c} (minus its clean error)")
                for c in _shared_corruptions(errors, baseline)]
    return 100 * sum(relative) / len(relative)


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear centred kernel alignment of two representations of the same n inputs, (n, d1) and (n, d2), in [0, 1].

    CKA = ||Y'^T X'||_F^2 / (||X'^T X'||_F ||Y'^T Y'||_F) on column-centred X' and Y' (Kornblith et al., ICML 2019,
    Eq. 5). It compares what two layers tell apart, not their coordinates: invariant to rotations and isotropic
    scaling of either, so layers of different widths, or of a ViT and a CNN, can be compared (Raghu et al., 2021).
    """
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"need (n, d) representations of the same n inputs, got {tuple(x.shape)} and {tuple(y.shape)}")
    if len(x) < 2:
        raise ValueError(f"CKA needs at least 2 inputs, got {len(x)}")
    x, y = x.double() - x.double().mean(0), y.double() - y.double().mean(0)
    denominator = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    if denominator == 0:
        raise ValueError("a representation is constant over the inputs: CKA is undefined")
    return (torch.linalg.matrix_norm(y.T @ x) ** 2 / denominator).item()


def cka_matrix(first: Sequence[Tensor], second: Sequence[Tensor]) -> Tensor:
    """(len(first), len(second)) linear CKA between every layer of one model and every layer of another (or itself).

    Computed from the n x n Gram matrices, once per layer: ||Y'^T X'||_F^2 = <X'X'^T, Y'Y'^T>_F, the same number as
    ``linear_cka`` at a cost that does not grow with the width (a ViT block's tokens or a CNN's feature map
    flattened have tens of thousands of features, far more than the images compared).
    """
    grams = [[_centred_gram(layer) for layer in layers] for layers in (first, second)]
    return torch.tensor([[_gram_cka(k, l) for l in grams[1]] for k in grams[0]])


def _centred_gram(layer: Tensor) -> Tensor:
    """X'X'^T for the (n, ...) representation flattened to (n, d) and centred over the inputs."""
    x = layer.flatten(1).double()
    x = x - x.mean(0)
    return x @ x.T


def _gram_cka(k: Tensor, l: Tensor) -> float:
    """Linear CKA from two centred Gram matrices of the same inputs."""
    if k.shape != l.shape:
        raise ValueError(f"representations of different numbers of inputs: {k.shape[0]} and {l.shape[0]}")
    denominator = torch.linalg.matrix_norm(k) * torch.linalg.matrix_norm(l)
    if denominator == 0:
        raise ValueError("a representation is constant over the inputs: CKA is undefined")
    return ((k * l).sum() / denominator).item()


def auroc(normal: Tensor, anomalous: Tensor) -> float:
    """Area under the ROC curve of an anomaly score: the chance that an anomalous input scores above a normal one.

    Ties count one half (the Mann-Whitney form of the area), so a score that cannot tell them apart gives 0.5.
    Higher scores must mean "more anomalous" (for the maximum softmax probability, pass its negative).
    """
    normal, anomalous = torch.as_tensor(normal).double().flatten(), torch.as_tensor(anomalous).double().flatten()
    if not len(normal) or not len(anomalous):
        raise ValueError(f"AUROC needs scores of both kinds, got {len(normal)} normal and {len(anomalous)} anomalous")
    if not (torch.isfinite(normal).all() and torch.isfinite(anomalous).all()):
        raise ValueError("scores must be finite")
    _, inverse, counts = torch.unique(torch.cat([normal, anomalous]), return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    ranks = (ends - (counts - 1) / 2)[inverse]  # ranks from 1, tied scores sharing their mean rank
    above = ranks[len(normal):].sum() - len(anomalous) * (len(anomalous) + 1) / 2
    return (above / (len(normal) * len(anomalous))).item()
